/** HolderReplica with hand-made chunks: zero extents zero the image; offers and chunks out of order are refused. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { chunkDigest, HolderReplica, pointDigest, type BaseImages, type BaseWanted, type ReplicaChunk, type ReplicaExtent, type ReplicaPointHeader } from '../src/replica/index.js'

const SIZE = 1 << 20
let dir: string
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'mv-holder-')) })
afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

function chunk (index: number, extents: ReplicaExtent[], data: Uint8Array): ReplicaChunk {
  return { index, extents, data, sha256: chunkDigest(index, extents, data) }
}

async function apply (replica: HolderReplica, over: Partial<ReplicaPointHeader>, chunks: ReplicaChunk[]): Promise<void> {
  const header: ReplicaPointHeader = {
    vmId: 'vm', epoch: 1, seq: 1, baseSeq: 0, kind: 'full', disks: [{ name: 'vda', sizeBytes: SIZE }], takenAt: 1,
    ...over, chunkCount: chunks.length, dataBytes: chunks.reduce((n, c) => n + c.data.length, 0)
  }
  expect((await replica.offer(header)).refusal).toBeUndefined()
  for (const c of chunks) await replica.receive(c)
  await replica.finish(pointDigest(header, chunks.map((c) => c.sha256)))
}

/** A library that holds one image (bytes 0x5a over its first half MiB) once `state` says so. */
function library (state: () => BaseWanted): BaseImages & { laid: number } {
  const lib = {
    laid: 0,
    want: () => state(),
    materialize: async (_digest: string, path: string, sizeBytes: number) => {
      lib.laid++
      await writeFile(path, Buffer.concat([Buffer.alloc(SIZE / 2, 0x5a), Buffer.alloc(sizeBytes - SIZE / 2)]))
    }
  }
  return lib
}
const IMAGE = `sha256:${'cd'.repeat(32)}`

describe('HolderReplica', () => {
  it('a full point on a library image: refused while the image is fetched or cannot be had; applied over the image once here', async () => {
    let state: BaseWanted = { state: 'fetching', detail: '3 of 8 chunks' }
    const lib = library(() => state)
    const replica = await HolderReplica.open(dir, 'vm', lib)
    const extents: ReplicaExtent[] = [{ disk: 'vda', offset: 4096, length: 4, zero: false }, { disk: 'vda', offset: 8192, length: 4096, zero: true }]
    const chunks = [chunk(0, extents, new Uint8Array([1, 2, 3, 4]))]
    const header: ReplicaPointHeader = { vmId: 'vm', epoch: 1, seq: 1, baseSeq: 0, kind: 'full', disks: [{ name: 'vda', sizeBytes: SIZE, baseDigest: IMAGE }], takenAt: 1, chunkCount: 1, dataBytes: 4 }
    expect(await replica.offer(header)).toMatchObject({ refusal: 'base-missing', detail: expect.stringContaining('3 of 8 chunks') })
    state = { state: 'unavailable', detail: 'no live holder' }
    expect(await replica.offer(header)).toMatchObject({ refusal: 'base-unavailable', detail: expect.stringContaining('no live holder') })
    state = { state: 'ready' }
    await apply(replica, header, chunks)
    expect(lib.laid).toBe(1)
    const image = await readFile(join(dir, 'vda.raw'))
    expect(image.length).toBe(SIZE)
    expect([...image.subarray(4094, 4100)]).toEqual([0x5a, 0x5a, 1, 2, 3, 4])
    expect(image.subarray(8192, 12288).every((b) => b === 0)).toBe(true)
    expect(image.subarray(12288, SIZE / 2).every((b) => b === 0x5a)).toBe(true)
    expect(image.subarray(SIZE / 2).every((b) => b === 0)).toBe(true)
    // An incremental after it applies in place, over the image's bytes.
    await apply(replica, { seq: 2, baseSeq: 1, kind: 'incremental' }, [chunk(0, [{ disk: 'vda', offset: 0, length: 2, zero: false }], new Uint8Array([7, 7]))])
    expect([...(await readFile(join(dir, 'vda.raw'))).subarray(0, 3)]).toEqual([7, 7, 0x5a])
    expect(lib.laid).toBe(1)
  })

  it('a holder with no image library refuses a point on a library image (send it whole)', async () => {
    const replica = await HolderReplica.open(dir, 'vm')
    const header: ReplicaPointHeader = { vmId: 'vm', epoch: 1, seq: 1, baseSeq: 0, kind: 'full', disks: [{ name: 'vda', sizeBytes: SIZE, baseDigest: IMAGE }], takenAt: 1, chunkCount: 1, dataBytes: 4 }
    expect((await replica.offer(header)).refusal).toBe('base-unavailable')
  })

  it('a layer committed before a crash is applied over the image at the next open', async () => {
    const lib = library(() => ({ state: 'ready' }))
    const replica = await HolderReplica.open(dir, 'vm', lib)
    const chunks = [chunk(0, [{ disk: 'vda', offset: 0, length: 2, zero: false }], new Uint8Array([9, 9]))]
    const header: ReplicaPointHeader = { vmId: 'vm', epoch: 1, seq: 1, baseSeq: 0, kind: 'full', disks: [{ name: 'vda', sizeBytes: SIZE, baseDigest: IMAGE }], takenAt: 1, chunkCount: 1, dataBytes: 2 }
    expect((await replica.offer(header)).refusal).toBeUndefined()
    await replica.receive(chunks[0] as ReplicaChunk)
    await replica.commit(pointDigest(header, chunks.map((c) => c.sha256)))
    await replica.close()
    const reopened = await HolderReplica.open(dir, 'vm', lib)
    expect(reopened.position).toMatchObject({ seq: 1 })
    const image = await readFile(join(dir, 'vda.raw'))
    expect([...image.subarray(0, 3)]).toEqual([9, 9, 0x5a])
  })

  it('applies data and zero extents; a full point replaces the image', async () => {
    const replica = await HolderReplica.open(dir, 'vm')
    await apply(replica, {}, [chunk(0, [{ disk: 'vda', offset: 4096, length: 8192, zero: false }], new Uint8Array(8192).fill(0xab))])
    await apply(replica, { seq: 2, baseSeq: 1, kind: 'incremental' }, [chunk(0, [{ disk: 'vda', offset: 6144, length: 1024, zero: true }], new Uint8Array(0))])
    let image = await readFile(join(dir, 'vda.raw'))
    expect(image.length).toBe(SIZE)
    expect(image.subarray(4096, 6144).every((b) => b === 0xab)).toBe(true)
    expect(image.subarray(6144, 7168).every((b) => b === 0)).toBe(true)
    expect(image.subarray(7168, 12288).every((b) => b === 0xab)).toBe(true)
    await apply(replica, { seq: 3 }, [chunk(0, [{ disk: 'vda', offset: 0, length: 2, zero: false }], new Uint8Array([1, 2]))])
    image = await readFile(join(dir, 'vda.raw'))
    expect([...image.subarray(0, 3)]).toEqual([1, 2, 0])
    expect(image.subarray(4096, 12288).every((b) => b === 0)).toBe(true)
    expect(replica.position).toMatchObject({ epoch: 1, seq: 3, takenAt: 1 })
  })

  it('takes an incremental of a disk that grew (vm resize): the image grows, zeros at its new end; a shrink or another disk needs a full point', async () => {
    const replica = await HolderReplica.open(dir, 'vm')
    await apply(replica, {}, [chunk(0, [{ disk: 'vda', offset: 0, length: 4, zero: false }], new Uint8Array([9, 9, 9, 9]))])
    const grown = [{ name: 'vda', sizeBytes: 2 * SIZE }]
    await apply(replica, { seq: 2, baseSeq: 1, kind: 'incremental', disks: grown }, [chunk(0, [{ disk: 'vda', offset: SIZE + 8, length: 2, zero: false }], new Uint8Array([7, 7]))])
    const image = await readFile(join(dir, 'vda.raw'))
    expect(image.length).toBe(2 * SIZE)
    expect([...image.subarray(0, 4)]).toEqual([9, 9, 9, 9])
    expect(image.subarray(SIZE, SIZE + 8).every((b) => b === 0)).toBe(true)
    expect([...image.subarray(SIZE + 8, SIZE + 10)]).toEqual([7, 7])
    const header = (over: Partial<ReplicaPointHeader>): ReplicaPointHeader => ({ vmId: 'vm', epoch: 1, seq: 3, baseSeq: 2, kind: 'incremental', disks: grown, takenAt: 1, chunkCount: 0, dataBytes: 0, ...over })
    expect((await replica.offer(header({ disks: [{ name: 'vda', sizeBytes: SIZE }] }))).refusal).toBe('gap')
    expect((await replica.offer(header({ disks: [{ name: 'vdb', sizeBytes: 2 * SIZE }] }))).refusal).toBe('gap')
  })

  it('refuses a chunk out of order, one outside the disk, and an end before the last chunk', async () => {
    const replica = await HolderReplica.open(dir, 'vm')
    const header: ReplicaPointHeader = { vmId: 'vm', epoch: 1, seq: 1, baseSeq: 0, kind: 'full', disks: [{ name: 'vda', sizeBytes: SIZE }], takenAt: 1, chunkCount: 2, dataBytes: 2 }
    await expect(replica.receive(chunk(0, [{ disk: 'vda', offset: 0, length: 1, zero: false }], new Uint8Array(1)))).rejects.toMatchObject({ code: 'ERR_REPLICA_PROTOCOL' })
    await replica.offer(header)
    await expect(replica.receive(chunk(1, [{ disk: 'vda', offset: 0, length: 1, zero: false }], new Uint8Array(1)))).rejects.toThrow(/expected chunk 0/)
    await expect(replica.receive(chunk(0, [{ disk: 'vda', offset: SIZE, length: 1, zero: false }], new Uint8Array(1)))).rejects.toThrow(/outside/)
    await expect(replica.receive(chunk(0, [{ disk: 'vdb', offset: 0, length: 1, zero: false }], new Uint8Array(1)))).rejects.toThrow(/outside/)
    await replica.receive(chunk(0, [{ disk: 'vda', offset: 0, length: 1, zero: false }], new Uint8Array(1)))
    await expect(replica.finish(new Uint8Array(32))).rejects.toThrow(/after 1 of 2 chunks/)
    await replica.receive(chunk(1, [{ disk: 'vda', offset: 1, length: 1, zero: false }], new Uint8Array(1)))
    await expect(replica.finish(new Uint8Array(32))).rejects.toMatchObject({ code: 'ERR_REPLICA_CHECKSUM' })
    expect(replica.position.seq).toBe(0)
    expect((await replica.images()).disks).toEqual([])
  })
})
