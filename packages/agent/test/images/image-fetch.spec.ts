/**
 * The image store and the fetch swarm over real files, with the protocol's server answering from
 * each "host"'s store and faults injected in between: a holder that dies mid-fetch, one that serves
 * corrupted bytes, one that holds nothing, a fetch broken off and resumed.
 */
import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import { mkdtemp, open, readFile, rm, stat, writeFile, type FileHandle } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { pb } from '@meshvirt/proto'
import { BufferPool } from '../../src/images/buffer-pool.js'
import { catalogueOf } from '../../src/images/catalogue.js'
import { ChunkTransport } from '../../src/images/chunk-transport.js'
import { DirectChunkClient, DirectChunkServer, FrameReader } from '../../src/images/direct-chunks.js'
import { ImageFetcher } from '../../src/images/image-fetcher.js'
import { fileBlocks, hashRange, ImageFiles } from '../../src/images/image-files.js'
import { holding } from '../../src/images/image-library.js'
import { imageServer } from '../../src/images/image-protocol.js'
import { ImageStore } from '../../src/images/image-store.js'
import { CHUNK_BYTES, sha256Hex } from '../../src/images/manifest.js'
import { ControlError } from '../../src/control/errors.js'
import { silentLogger } from '../../src/log/logger.js'

/** 5 chunks and a bit: the last chunk is short. */
const SIZE = 5 * CHUNK_BYTES + 12_345

let dir: string
let file: string
let bytes: Buffer
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mv-images-'))
  bytes = randomBytes(SIZE)
  file = join(dir, 'disk.raw')
  await writeFile(file, bytes)
})
afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

interface Host {
  id: string
  store: ImageStore
  alive: boolean
  fault?: (req: { chunk?: number | null }, answer: Uint8Array) => Uint8Array | Error
  /** Its repair, once a fetcher told it that it served damaged chunks and it found them so. */
  repaired?: Promise<{ path: string, damaged: number }>
}

async function host (id: string): Promise<Host> {
  const store = new ImageStore(join(dir, id))
  await store.load()
  return { id, store, alive: true }
}

function fetcherFor (self: Host, hosts: Host[], bad: string[] = [], told: Array<boolean | undefined> = []): ImageFetcher {
  return new ImageFetcher({
    selfId: self.id,
    store: self.store,
    catalogue: () => catalogueOf(hosts.map((h) => ({ hostId: h.id, hostname: h.id, alive: h.alive, images: h.store.list().map((i) => holding(i, [])), imageTombstones: [] }))),
    request: async (hostId, req) => {
      const h = hosts.find((x) => x.id === hostId) as Host
      if (!h.alive) throw new Error(`${hostId} is dead`)
      const answer = await imageServer(h.store, { repair: (digest) => { h.repaired ??= fetcherFor(h, hosts).repair(digest) } })(req)
      const faulty = h.fault?.(pb.ImageRequest.decode(req), answer) ?? answer
      if (faulty instanceof Error) throw faulty
      return faulty
    },
    advanced: () => {},
    badHolder: (hostId, _digest, _chunk, damaged) => { bad.push(hostId); told.push(damaged) },
    log: silentLogger
  })
}

describe('ImageStore', () => {
  it('imports a file content-addressed: the digest is the bytes\' SHA-256, every chunk has its own; again is a no-op with the name added', async () => {
    const a = await host('a')
    const first = await a.store.importFile(file, 'raw', 'disk:latest', 1)
    expect(first.imported).toBe(true)
    expect(first.image.manifest.digest).toBe('sha256:' + sha256Hex(bytes))
    expect(first.image.manifest.chunks).toHaveLength(6)
    expect(first.image.manifest.chunks[5]).toBe(sha256Hex(bytes.subarray(5 * CHUNK_BYTES)))
    expect(sha256Hex(await readFile(a.store.path(first.image.manifest.digest) as string))).toBe(sha256Hex(bytes))
    const again = await a.store.importFile(file, 'raw', 'disk:v2', 2)
    expect(again.imported).toBe(false)
    expect(again.image.refs).toEqual(['disk:latest', 'disk:v2'])
    // (hashes compared: a deep equality of 5 MiB is slow)
    // A restarted agent finds it as it was.
    const reloaded = new ImageStore(join(dir, 'a'))
    await reloaded.load()
    expect(reloaded.get(first.image.manifest.digest)?.refs).toEqual(['disk:latest', 'disk:v2'])
    expect(reloaded.path(first.image.manifest.digest)).toBeDefined()
  })

  it('refuses a chunk that is not the manifest\'s, and keeps nothing of it', async () => {
    const a = await host('a')
    const b = await host('b')
    const { image } = await a.store.importFile(file, 'raw', 'disk:latest', 1)
    await b.store.beginFetch(image.manifest, [], 0)
    await expect(b.store.writeChunk(image.manifest.digest, 0, randomBytes(CHUNK_BYTES))).rejects.toMatchObject({ code: 'DATA_LOSS' })
    expect(b.store.get(image.manifest.digest)?.have.held()).toBe(0)
  })
})

describe('ImageStore: a copy found damaged', () => {
  it('a sound chunk changes nothing; a damaged one is no longer held, the name VMs read stays, and a restart remembers', async () => {
    const a = await host('a')
    const { image } = await a.store.importFile(file, 'raw', 'disk:latest', 1)
    const digest = image.manifest.digest
    const path = a.store.path(digest) as string
    expect(await a.store.checkChunks(digest, [2])).toEqual([])
    expect(a.store.path(digest)).toBe(path)
    const f = await open(path, 'r+')
    try { await f.write(Buffer.from('rot'), 0, 3, 2 * CHUNK_BYTES) } finally { await f.close() }
    // Two fetchers report it at once: one check at a time, the second finds the chunk already not held.
    const [first, second] = await Promise.all([a.store.checkChunks(digest, [2, 3]), a.store.checkChunks(digest, [2])])
    expect(first).toEqual([2])
    expect(second).toEqual([])
    // Not served, not complete; the file a VM's overlay names is still there (the same file as the partial).
    expect(a.store.path(digest)).toBeUndefined()
    expect(await a.store.readChunk(digest, 2)).toBeUndefined()
    expect(await a.store.readChunk(digest, 3)).toEqual(bytes.subarray(3 * CHUNK_BYTES, 4 * CHUNK_BYTES))
    expect((await stat(path)).ino).toBe((await stat(path + '.partial')).ino)
    const again = new ImageStore(join(dir, 'a'))
    await again.load()
    expect(again.get(digest)?.have.missing()).toEqual([2])
    // The repair writes through the same file: the VMs' name reads the right bytes again.
    await again.writeChunk(digest, 2, bytes.subarray(2 * CHUNK_BYTES, 3 * CHUNK_BYTES))
    expect(await again.finishFetch(digest)).toBe(true)
    expect(again.path(digest)).toBe(path)
    expect(sha256Hex(await readFile(path))).toBe(sha256Hex(bytes))
    await expect(stat(path + '.partial')).rejects.toMatchObject({ code: 'ENOENT' })
    await again.close()
  })
})

describe('ImageFiles', () => {
  it('fileBlocks: a file\'s bytes in blocks from two buffers in turn, each right when it is yielded; a caller may stop early', async () => {
    const seen: Buffer[] = []
    const buffers = new Set<ArrayBufferLike>()
    for await (const block of fileBlocks(file, undefined, 1000 * 1000)) {
      seen.push(Buffer.from(block))
      buffers.add(block.buffer)
    }
    expect(Buffer.concat(seen).equals(bytes)).toBe(true)
    expect(seen.map((b) => b.length).slice(0, 5)).toEqual([1e6, 1e6, 1e6, 1e6, 1e6])
    expect(buffers.size).toBe(2)
    const early = fileBlocks(file, undefined, 4096)
    expect((await early.next()).value?.equals(bytes.subarray(0, 4096))).toBe(true)
    // Stopped after one block (a read of the next in flight): it ends cleanly.
    expect(await early.return(undefined)).toEqual({ done: true, value: undefined })
  })

  it('fileBlocks and hashRange over a span: only its bytes, cut where it ends; past the file\'s end, what is there', async () => {
    const span = { offset: 1_500_000, length: 2_300_001 }
    const seen: Buffer[] = []
    for await (const block of fileBlocks(file, span, 1000 * 1000)) seen.push(Buffer.from(block))
    expect(seen.map((b) => b.length)).toEqual([1e6, 1e6, 300_001])
    expect(Buffer.concat(seen).equals(bytes.subarray(span.offset, span.offset + span.length))).toBe(true)
    expect(await hashRange(file, span)).toBe(sha256Hex(bytes.subarray(span.offset, span.offset + span.length)))
    expect(await hashRange(file, { offset: bytes.length - 10, length: 100 })).toBe(sha256Hex(bytes.subarray(bytes.length - 10)))
    expect(await hashRange(file, { offset: 7, length: 0 })).toBe(sha256Hex(Buffer.alloc(0)))
  })

  it('one handle per image, shared while in use; dropped: closed once its last user is done; idle: closed', async () => {
    const files = new ImageFiles(50)
    let opened = 0
    const path = async (): Promise<{ path: string, flags: 'r' }> => { opened++; return { path: file, flags: 'r' } }
    const read = async (f: FileHandle): Promise<number> => (await f.read(Buffer.alloc(16), 0, 16, 0)).bytesRead
    const handles = new Set<FileHandle>()
    await Promise.all([1, 2, 3].map(async () => await files.with('x', path, async (f) => { handles.add(f); return await read(f) })))
    expect([opened, handles.size]).toEqual([1, 1])
    let during: FileHandle | undefined
    await files.with('x', path, async (f) => {
      during = f
      await files.drop('x')
      expect(await read(f)).toBe(16)
    })
    await new Promise((resolve) => setTimeout(resolve, 10))
    await expect(read(during as FileHandle)).rejects.toThrow()
    await files.with('x', path, read)
    expect(opened).toBe(2)
    await new Promise((resolve) => setTimeout(resolve, 200))
    await files.with('x', path, read)
    expect(opened).toBe(3)
    await files.close()
  })
})

describe('ImageFetcher', () => {
  it('fetches from two holders at once, every chunk verified; the image is byte for byte the original', async () => {
    const [a, b, c] = [await host('a'), await host('b'), await host('c')]
    const { image } = await a.store.importFile(file, 'raw', 'disk:latest', 1)
    await b.store.importFile(file, 'raw', 'disk:latest', 1)
    const asked = new Set<string>()
    for (const h of [a, b]) h.fault = (_req, answer) => { asked.add(h.id); return answer }
    const path = await fetcherFor(c, [a, b, c]).fetch(image.manifest.digest)
    expect(sha256Hex(await readFile(path))).toBe(sha256Hex(bytes))
    expect(asked).toEqual(new Set(['a', 'b']))
    expect(c.store.get(image.manifest.digest)?.refs).toEqual(['disk:latest'])
  })

  it('a holder killed mid-fetch: the fetch completes from the other', async () => {
    const [a, b, c] = [await host('a'), await host('b'), await host('c')]
    const { image } = await a.store.importFile(file, 'raw', 'disk:latest', 1)
    await b.store.importFile(file, 'raw', 'disk:latest', 1)
    let served = 0
    a.fault = (_req, answer) => { if (++served === 2) a.alive = false; return answer }
    const path = await fetcherFor(c, [a, b, c]).fetch(image.manifest.digest)
    expect(sha256Hex(await readFile(path))).toBe(sha256Hex(bytes))
  })

  it('a holder that serves corrupted chunks is caught and not asked again; the image is still right', async () => {
    const [a, b, c] = [await host('a'), await host('b'), await host('c')]
    const { image } = await a.store.importFile(file, 'raw', 'disk:latest', 1)
    await b.store.importFile(file, 'raw', 'disk:latest', 1)
    b.fault = (req, answer) => req.chunk != null ? pb.ImageResponse.encode({ chunk: randomBytes(CHUNK_BYTES) }).finish() : answer
    // Only b at first, so it is certainly asked; a appears once b is caught.
    a.alive = false
    const bad: string[] = []
    const told: Array<boolean | undefined> = []
    const fetching = fetcherFor(c, [a, b, c], bad, told).fetch(image.manifest.digest)
    await new Promise((resolve) => setTimeout(resolve, 300))
    a.alive = true
    expect(sha256Hex(await readFile(await fetching))).toBe(sha256Hex(bytes))
    expect(bad).toContain('b')
    // b was told; its copy on disk is sound (the bytes went bad on the way), so it changed nothing.
    await vi.waitFor(() => { expect(told).toContain(false) })
    expect(b.repaired).toBeUndefined()
    expect(b.store.path(image.manifest.digest)).toBeDefined()
  })

  it('a holder whose disk damaged its copy is told, stops serving the damage, and repairs it from another holder', async () => {
    const [a, b, c] = [await host('a'), await host('b'), await host('c')]
    const { image } = await a.store.importFile(file, 'raw', 'disk:latest', 1)
    const digest = image.manifest.digest
    await b.store.importFile(file, 'raw', 'disk:latest', 1)
    const bPath = b.store.path(digest) as string
    // Two chunks of b's copy rot on disk; only b is up at first, so it certainly serves one of them.
    const f = await open(bPath, 'r+')
    try { for (const i of [1, 4]) await f.write(randomBytes(100), 0, 100, i * CHUNK_BYTES + 7) } finally { await f.close() }
    a.alive = false
    const told: Array<boolean | undefined> = []
    const fetching = fetcherFor(c, [a, b, c], [], told).fetch(digest)
    await vi.waitFor(() => { expect(told[0]).toBe(true) })
    a.alive = true
    expect(sha256Hex(await readFile(await fetching))).toBe(sha256Hex(bytes))
    // b checked its whole copy, fetched both damaged chunks again from a, and is whole under the same name.
    const repaired = await (b.repaired as Promise<{ path: string, damaged: number }>)
    expect(repaired).toEqual({ path: bPath, damaged: 2 })
    expect(sha256Hex(await readFile(bPath))).toBe(sha256Hex(bytes))
    expect(b.store.get(digest)?.have.complete()).toBe(true)
    await expect(stat(bPath + '.partial')).rejects.toMatchObject({ code: 'ENOENT' })
    // If c had both damaged chunks from b, b confirmed both (checked one at a time).
    expect(told.every((t) => t === true)).toBe(true)
  })

  it('hosts still fetching serve the chunks they have; a fetch broken off resumes with what it had', async () => {
    const [a, b, c] = [await host('a'), await host('b'), await host('c')]
    const { image } = await a.store.importFile(file, 'raw', 'disk:latest', 1)
    const digest = image.manifest.digest
    // b fetches 3 chunks, then a dies: b's fetch stops there.
    let served = 0
    a.fault = (req, answer) => { if (req.chunk != null && ++served > 3) return new Error('a died'); return answer }
    const abort = new AbortController()
    const partial = fetcherFor(b, [a, b, c]).fetch(digest, abort.signal)
    partial.catch(() => {})
    while ((b.store.get(digest)?.have.held() ?? 0) < 3) await new Promise((resolve) => setTimeout(resolve, 20))
    abort.abort()
    await expect(partial).rejects.toMatchObject({ code: 'ABORTED' })
    const held = b.store.get(digest)?.have.held()
    expect(held).toBe(3)
    // c fetches from a (back, for the chunks b lacks) and b (a partial holder): each chunk from someone.
    a.fault = undefined
    const fromB: number[] = []
    b.fault = (req, answer) => { if (req.chunk != null) fromB.push(req.chunk); return answer }
    expect(sha256Hex(await readFile(await fetcherFor(c, [a, b, c]).fetch(digest)))).toBe(sha256Hex(bytes))
    expect(fromB.every((chunk) => b.store.get(digest)?.have.has(chunk))).toBe(true)
    // b resumes: only the missing chunks are asked for.
    const askedOfA: number[] = []
    a.fault = (req, answer) => { if (req.chunk != null) askedOfA.push(req.chunk); return answer }
    c.alive = false
    const reloaded = { ...b, store: new ImageStore(join(dir, 'b')) }
    await reloaded.store.load()
    expect(reloaded.store.get(digest)?.have.held()).toBe(3)
    const before = reloaded.store.get(digest)?.have.missing()
    expect(sha256Hex(await readFile(await fetcherFor(reloaded, [a, reloaded, c]).fetch(digest)))).toBe(sha256Hex(bytes))
    expect(askedOfA.sort()).toEqual(before)
  })

  it('the disk fills mid-fetch: a clear error, and nothing of the image is left', async () => {
    const [a, c] = [await host('a'), await host('c')]
    const { image } = await a.store.importFile(file, 'raw', 'disk:latest', 1)
    let writes = 0
    const write = c.store.writeChunk.bind(c.store)
    c.store.writeChunk = async (digest, i, b) => {
      if (++writes > 2) throw new ControlError('RESOURCE_EXHAUSTED', `the disk filled while storing ${digest}; nothing was kept: free space and retry`)
      await write(digest, i, b)
    }
    await expect(fetcherFor(c, [a, c]).fetch(image.manifest.digest)).rejects.toMatchObject({ code: 'RESOURCE_EXHAUSTED' })
    expect(c.store.get(image.manifest.digest)).toBeUndefined()
    await expect(stat(join(dir, 'c', sha256Hex(bytes)))).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('no live holder: a clear error, and what was fetched is kept', async () => {
    const [a, c] = [await host('a'), await host('c')]
    const { image } = await a.store.importFile(file, 'raw', 'disk:latest', 1)
    a.alive = false
    await expect(fetcherFor(c, [a, c]).fetch(image.manifest.digest)).rejects.toThrow(/no live host holds a complete copy/)
  })
})

describe('the direct chunk path', () => {
  it('chunks come over TLS-PSK once the holder opens a session, in buffers used again on both sides; a third party without the key gets no session', async () => {
    const [a, c, d] = [await host('a'), await host('c'), await host('d')]
    const { image } = await a.store.importFile(file, 'raw', 'disk:latest', 1)
    const buffers = new BufferPool(CHUNK_BYTES + 64, 8)
    const server = new DirectChunkServer('127.0.0.1', imageServer(a.store, { buffers }), buffers)
    await server.start()
    const serve = imageServer(a.store, { direct: (peer) => server.open(peer) })
    let overMesh = 0
    const transport = new ChunkTransport({ mesh: async (_h, req) => { overMesh++; return await serve(req, 'c') }, timeoutMs: 10_000, direct: true, log: silentLogger })
    try {
      const fetcher = (self: Host): ImageFetcher => new ImageFetcher({
        selfId: self.id, store: self.store, log: silentLogger, advanced: () => {}, badHolder: () => {},
        catalogue: () => catalogueOf([{ hostId: 'a', hostname: 'a', alive: true, images: a.store.list().map((i) => holding(i, [])), imageTombstones: [] }]),
        request: async (hostId, req, signal) => await transport.request(hostId, req, signal),
        recycle: (answer) => { transport.recycle(answer) }
      })
      expect(sha256Hex(await readFile(await fetcher(c).fetch(image.manifest.digest)))).toBe(sha256Hex(bytes))
      // Over the mesh: the session's opening only; the manifest and the six chunks went direct.
      expect(overMesh).toBe(1)
      // The holder's chunk buffers came back once sent; a second fetch through the same buffers is right too.
      await vi.waitFor(() => { expect(buffers.kept).toBeGreaterThan(0) })
      expect(sha256Hex(await readFile(await fetcher(d).fetch(image.manifest.digest)))).toBe(sha256Hex(bytes))
      const session = server.open('someone')
      await expect(DirectChunkClient.connect({ ...session, key: randomBytes(32) }, 2_000)).rejects.toThrow()
    } finally {
      transport.close()
      await server.stop()
    }
  })

  it('requests on one connection are pipelined: answered in order however long each takes; a timeout fails them all', async () => {
    let calls = 0
    const server = new DirectChunkServer('127.0.0.1', async (req) => {
      // Later requests finish first: the answers must still come back in the order asked.
      const n = calls++
      await new Promise((resolve) => setTimeout(resolve, n === 0 ? 200 : 5 * (10 - (n % 10))))
      return req[0] === 0xff ? await new Promise<Uint8Array>(() => {}) : Buffer.concat([Buffer.from(req), randomBytes(n % 3 === 0 ? CHUNK_BYTES : 100)])
    })
    await server.start()
    const client = await DirectChunkClient.connect(server.open('c'))
    try {
      const asked = Array.from({ length: 12 }, (_, i) => Buffer.from([i]))
      const answers = await Promise.all(asked.map(async (a) => await client.request(a, 5_000)))
      expect(answers.map((a) => a[0])).toEqual(asked.map((a) => a[0]))
      expect(calls).toBe(12)
      const stuck = [client.request(Buffer.from([0xff]), 300), client.request(Buffer.from([1]), 5_000)]
      for (const p of stuck) await expect(p).rejects.toThrow(/no answer within 300 ms/)
      expect(client.closed).toBe(true)
    } finally {
      client.close()
      await server.stop()
    }
  })

  it('frames are read whole however the stream cuts them, headers included', async () => {
    const socket = new EventEmitter()
    const frames = new FrameReader(socket as unknown as Socket)
    const bodies = [randomBytes(10), Buffer.alloc(0), randomBytes(70_000), randomBytes(3)]
    const stream = Buffer.concat(bodies.flatMap((b) => { const h = Buffer.alloc(4); h.writeUInt32BE(b.length); return [h, b] }))
    // Cuts of 1 to 7 bytes, then one of all the rest.
    for (let at = 0, n = 1; at < stream.length; at += n, n = n < 7 ? n + 1 : stream.length) socket.emit('data', stream.subarray(at, at + n))
    socket.emit('end')
    for (const b of bodies) expect(Buffer.from(await frames.next() as Uint8Array).equals(b)).toBe(true)
    expect(await frames.next()).toBeUndefined()
  })

  it('a holder whose direct path is gone is asked over the mesh', async () => {
    const [a, c] = [await host('a'), await host('c')]
    const { image } = await a.store.importFile(file, 'raw', 'disk:latest', 1)
    const server = new DirectChunkServer('127.0.0.1', imageServer(a.store))
    await server.start()
    const serve = imageServer(a.store, { direct: (peer) => server.open(peer) })
    await server.stop()
    const transport = new ChunkTransport({ mesh: async (_h, req) => await serve(req, 'c'), timeoutMs: 10_000, direct: true, log: silentLogger })
    const fetcher = new ImageFetcher({
      selfId: 'c', store: c.store, log: silentLogger, advanced: () => {}, badHolder: () => {},
      catalogue: () => catalogueOf([{ hostId: 'a', hostname: 'a', alive: true, images: a.store.list().map((i) => holding(i, [])), imageTombstones: [] }]),
      request: async (hostId, req, signal) => await transport.request(hostId, req, signal)
    })
    expect(sha256Hex(await readFile(await fetcher.fetch(image.manifest.digest)))).toBe(sha256Hex(bytes))
    transport.close()
  })
})
