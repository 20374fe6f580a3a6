import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { VmSpec as DriverSpec } from '@meshvirt/hypervisor'
import { silentLogger } from '../../src/log/logger.js'
import type { ImageFetcher } from '../../src/images/image-fetcher.js'
import { imageResource, type FetchOutcome } from '../../src/images/image-resource.js'
import { ImageStore } from '../../src/images/image-store.js'
import { CHUNK_BYTES, sha256Hex, type ImageManifest } from '../../src/images/manifest.js'
import type { VmOrigin } from '../../src/vm/vm-preparation.js'

const DIGEST = 'sha256:' + 'ab'.repeat(32)
const driver: DriverSpec = { id: 'vm-0000000000000001', vcpus: 1, memoryMiB: 128, boot: { kind: 'disk' }, disks: [{ name: 'vda', sizeMiB: 1024 }] }
const vm = (kind: VmOrigin['kind']): { id: string, spec: object, origin: VmOrigin } =>
  ({ id: driver.id, spec: { boot: { library: { ref: 'debian-12:latest', digest: DIGEST } } }, origin: kind === 'promotion' ? { kind, replicaDisk: '/x' } : { kind } })

/** A fetcher that answers as told: the base's path, or the error. */
function fetcher (answer: () => Promise<string>): () => ImageFetcher {
  return () => ({ fetch: async () => await answer() }) as unknown as ImageFetcher
}

describe('a VM\'s library image as a per-VM resource', () => {
  let dir: string
  let store: ImageStore
  const outcomes: FetchOutcome[] = []
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mv-img-res-'))
    store = new ImageStore(dir)
    await store.load()
    outcomes.length = 0
  })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('the fetched base becomes the disk\'s shared base', async () => {
    const bytes = Buffer.alloc(CHUNK_BYTES, 3)
    const manifest: ImageManifest = { digest: 'sha256:' + sha256Hex(bytes), sizeBytes: bytes.length, format: 'raw', chunkBytes: CHUNK_BYTES, chunks: [sha256Hex(bytes)] }
    const r = imageResource({
      store, log: silentLogger, fetched: (f) => outcomes.push(f),
      // What the real fetcher does: the bytes into the store, its path back.
      fetcher: fetcher(async () => {
        await store.beginFetch(manifest, ['debian-12:latest'], 1)
        await store.writeChunk(manifest.digest, 0, bytes)
        await store.finishFetch(manifest.digest)
        return store.path(manifest.digest) as string
      })
    })
    const out = await r.prepare({ ...vm('create'), spec: { boot: { library: { ref: 'debian-12:latest', digest: manifest.digest } } } } as never, driver)
    expect(out.disks?.[0]).toMatchObject({ name: 'vda', base: store.path(manifest.digest), sharedBase: true })
    expect(outcomes).toMatchObject([{ digest: manifest.digest, ref: 'debian-12:latest', vmId: driver.id, sizeBytes: CHUNK_BYTES }])
    expect(r.progressOf(driver.id)).toBeUndefined()
  })

  it('a base that cannot be fetched: a new VM fails; an arriving one gets its disk whole (no base), and the failure is told', async () => {
    const r = imageResource({ store, fetcher: fetcher(async () => { throw new Error('no live host holds it') }), log: silentLogger, fetched: (f) => outcomes.push(f) })
    await expect(r.prepare(vm('create') as never, driver)).rejects.toThrow(/no live host holds it/)
    const incoming = await r.prepare(vm('incoming') as never, driver)
    expect(incoming.disks?.[0]).toEqual({ name: 'vda', sizeMiB: 1024 })
    expect(outcomes.map((o) => o.error)).toEqual(['no live host holds it', 'no live host holds it'])
  })

  it('a promoted replica brings its own disk: nothing is fetched', async () => {
    const r = imageResource({ store, fetcher: fetcher(async () => { throw new Error('must not be asked') }), log: silentLogger })
    expect(await r.prepare(vm('promotion') as never, driver)).toBe(driver)
  })

  it('while a VM waits, its progress is read from the store: chunks and bytes held, the short last chunk counted as it is', async () => {
    const bytes = Buffer.alloc(2.5 * CHUNK_BYTES, 7)
    const chunks = [0, 1, 2].map((i) => sha256Hex(bytes.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES)))
    const manifest: ImageManifest = { digest: 'sha256:' + sha256Hex(bytes), sizeBytes: bytes.length, format: 'raw', chunkBytes: CHUNK_BYTES, chunks }
    let release: (path: string) => void = () => {}
    const r = imageResource({ store, fetcher: fetcher(async () => await new Promise<string>((resolve) => { release = resolve })), log: silentLogger, now: () => 5_000 })
    const v = { ...vm('create'), spec: { boot: { library: { ref: 'debian-12:latest', digest: manifest.digest } } } }
    const preparing = r.prepare(v as never, driver)
    expect(r.progressOf(driver.id)).toEqual({ ref: 'debian-12:latest', digest: manifest.digest, chunksHeld: 0, chunkCount: 0, bytesHeld: 0, sizeBytes: 0, startedAtMs: 5_000 })
    await store.beginFetch(manifest, ['debian-12:latest'], 1)
    await store.writeChunk(manifest.digest, 2, bytes.subarray(2 * CHUNK_BYTES))
    expect(r.progressOf(driver.id)).toMatchObject({ chunksHeld: 1, chunkCount: 3, bytesHeld: CHUNK_BYTES / 2, sizeBytes: bytes.length })
    await store.writeChunk(manifest.digest, 0, bytes.subarray(0, CHUNK_BYTES))
    expect(r.progressOf(driver.id)).toMatchObject({ chunksHeld: 2, bytesHeld: 1.5 * CHUNK_BYTES })
    release('/base')
    await preparing
    expect(r.progressOf(driver.id)).toBeUndefined()
  })
})
