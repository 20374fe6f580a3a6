import { pb } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'
import { heapMode } from '../heap-mode.js'
import type { Logger } from '../log/logger.js'
import type { Catalogue, ImageHolder } from './catalogue.js'
import { HaveBitmap } from './have-bitmap.js'
import { decodeImageResponse, ImagePeerError, manifestFromWire } from './image-protocol.js'
import type { ImageStore } from './image-store.js'
import { manifestProblem, type ImageManifest } from './manifest.js'
import { nextPieces, unheld, type ChunkSource } from './piece-selection.js'
import type { TokenBucket } from '../replica/token-bucket.js'

/** Requests in flight per holder, and per fetch in all. */
export const PER_HOLDER = 4
export const PER_FETCH = 16
/** A fetch that gets no chunk for this long, with nothing in flight, fails (no live holder has them). */
export const STALL_MS = 30_000
/** A holder that failed a request is left alone for this long (it may be dying, or busy). */
const BACKOFF_MS = 2_000
/** A holder told it served bad bytes answers within this (it hashes one chunk). */
const CHECK_TIMEOUT_MS = 10_000
/** How often a fetch waiting for holders looks at the view again, and how long it uses what it read of it. */
const POLL_MS = 250

export interface FetchProgress { digest: string, chunksHeld: number, chunkCount: number, bytesHeld: number, sizeBytes: number }

export interface ImageFetcherDeps {
  selfId: string
  store: ImageStore
  catalogue: () => Catalogue
  /** One image-protocol round trip to a host. */
  request: (hostId: string, bytes: Uint8Array, signal: AbortSignal) => Promise<Uint8Array>
  /** An answer of `request` is read no more (its buffer may be used again). */
  recycle?: (answer: Uint8Array) => void
  /** Bounds the bytes all fetches of the host take per second; absent: unbounded. */
  bucket?: Pick<TokenBucket, 'take'>
  /** Chunks arrived: the advert should say so (throttled by the caller), so others fetch from here. */
  advanced: () => void
  /**
   * A holder served bytes that are not the image (and is not asked again by this fetch). It was told
   * and checked its copy: `damaged` says what it found (undefined: it could not be told).
   */
  badHolder: (hostId: string, digest: string, chunk: number, damaged: boolean | undefined) => void
  log: Logger
}

/**
 * Fetches images into the store, from every host that holds them — complete copies and hosts still
 * fetching alike — a chunk at a time, rarest first, each verified against the manifest before it is
 * written. A fetch resumes what the store already has (after a broken stream or a restart). One fetch
 * per image at a time: a second caller joins the first.
 */
export class ImageFetcher {
  private readonly running = new Map<string, Promise<string>>()

  constructor (private readonly deps: ImageFetcherDeps) {}

  /** The image's path once it is all here. */
  async fetch (digest: string, signal?: AbortSignal, onProgress?: (p: FetchProgress) => void): Promise<string> {
    const have = this.deps.store.path(digest)
    if (have !== undefined) return have
    let run = this.running.get(digest)
    if (run === undefined) {
      run = this.run(digest, signal, onProgress).finally(() => { this.running.delete(digest) })
      this.running.set(digest, run)
    }
    return await run
  }

  /**
   * Chunks of this host's copy were found damaged on disk: one damaged chunk says the disk lost
   * bytes, so every chunk held is checked, and what is damaged is fetched again from the others.
   * Returns the image's path once it is whole again, and how many chunks were damaged.
   */
  async repair (digest: string, signal?: AbortSignal): Promise<{ path: string, damaged: number }> {
    const img = this.deps.store.get(digest)
    if (img === undefined) throw new ControlError('NOT_FOUND', `image ${digest} is not on this host`)
    await this.deps.store.checkChunks(digest, img.manifest.chunks.map((_, i) => i))
    const damaged = img.manifest.chunks.length - (this.deps.store.get(digest)?.have.held() ?? 0)
    this.deps.advanced()
    return { path: await this.fetch(digest, signal), damaged }
  }

  private async run (digest: string, signal: AbortSignal | undefined, onProgress?: (p: FetchProgress) => void): Promise<string> {
    try {
      return await this.swarm(digest, signal, onProgress)
    } finally {
      // A fetch that ends (done, failed, cancelled) leaves its have file saying what it got.
      await this.deps.store.settled(digest)
    }
  }

  private async swarm (digest: string, signal: AbortSignal | undefined, onProgress?: (p: FetchProgress) => void): Promise<string> {
    const started = Date.now()
    const manifest = this.deps.store.get(digest)?.manifest ?? await this.manifest(digest, signal)
    const entry = this.deps.catalogue().byDigest.get(digest)
    const img = await this.deps.store.beginFetch(manifest, entry?.refs ?? [], entry?.namedAtMs ?? 0)
    this.deps.log.info('fetching an image', { digest, sizeBytes: manifest.sizeBytes, chunks: manifest.chunks.length, held: img.have.held() })
    // This fetch's own order among equally rare chunks (piece-selection.ts: why not image order).
    const order = shuffle(manifest.chunks.map((_, i) => i))
    const rankOf = new Map(order.map((c, i) => [c, i]))
    const tieRank = (c: number): number => rankOf.get(c) ?? c
    const bad = new Set<string>()
    const resting = new Map<string, number>()
    const inFlight = new Map<number, string>()
    const load = new Map<string, number>()
    const notHeld = new Set<string>()
    let lastProgress = Date.now()
    // The catalogue is rebuilt from the view when asked: once per POLL_MS, not after every chunk.
    let seen: { at: number, holders: ImageHolder[] } | undefined
    const holders = (): ImageHolder[] => {
      if (seen === undefined || Date.now() - seen.at >= POLL_MS) seen = { at: Date.now(), holders: this.deps.catalogue().byDigest.get(digest)?.holders ?? [] }
      return seen.holders
    }
    let failure: Error | undefined
    let wake: () => void = () => {}
    const report = (): void => {
      const held = img.have.held()
      onProgress?.({ digest, chunksHeld: held, chunkCount: manifest.chunks.length, bytesHeld: Math.min(manifest.sizeBytes, held * manifest.chunkBytes), sizeBytes: manifest.sizeBytes })
    }
    const ask = async (chunk: number, hostId: string): Promise<void> => {
      try {
        await this.deps.bucket?.take(manifest.chunkBytes, signal)
        const raw = await this.deps.request(hostId, pb.ImageRequest.encode({ digest, chunk }).finish(), signal ?? AbortSignal.timeout(2 ** 31 - 1))
        heapMode.bulkWork()
        try {
          await this.deps.store.writeChunk(digest, chunk, decodeImageResponse(raw).chunk as Uint8Array)
        } catch (err) {
          this.deps.recycle?.(raw)
          if ((err as ControlError).code !== 'DATA_LOSS') throw err
          bad.add(hostId)
          this.deps.log.warn('a holder served bytes that are not the image: not asked again', { digest, chunk, holder: hostId })
          void this.tellHolder(hostId, digest, chunk)
          return
        }
        this.deps.recycle?.(raw)
        lastProgress = Date.now()
        this.deps.advanced()
        report()
      } catch (err) {
        if (err instanceof ImagePeerError && err.code === 'NOT_HELD') notHeld.add(`${hostId}/${chunk}`)
        else if ((err as ControlError).code === 'RESOURCE_EXHAUSTED') failure = err as Error
        else resting.set(hostId, Date.now() + BACKOFF_MS)
      } finally {
        inFlight.delete(chunk)
        load.set(hostId, (load.get(hostId) ?? 1) - 1)
        wake()
      }
    }
    report()
    for (;;) {
      if (signal?.aborted === true) throw new ControlError('ABORTED', `the fetch of ${digest} was cancelled`)
      if (failure !== undefined) {
        // The disk filled: what was fetched goes too (a partial image would only hold the space).
        await this.deps.store.remove(digest)
        throw failure
      }
      const missing = img.have.missing()
      if (missing.length === 0 && inFlight.size === 0) {
        if (await this.deps.store.finishFetch(digest)) break
        this.deps.log.warn('an image was whole but not its digest: fetching the chunks that changed again', { digest, missing: img.have.missing().length })
        continue
      }
      const sources = this.sources(holders(), manifest, bad, resting, load)
      const holdsNone = (s: ChunkSource, c: number): boolean => notHeld.has(`${s.hostId}/${c}`)
      const usable = notHeld.size === 0 ? sources : sources.map((s) => ({ ...s, have: { has: (c: number) => s.have.has(c) && !holdsNone(s, c) } }))
      for (const a of nextPieces({ missing, inFlight: new Set(inFlight.keys()), sources: usable, perSource: PER_HOLDER, total: PER_FETCH, tieRank })) {
        inFlight.set(a.chunk, a.hostId)
        load.set(a.hostId, (load.get(a.hostId) ?? 0) + 1)
        void ask(a.chunk, a.hostId)
      }
      if (inFlight.size === 0 && Date.now() - lastProgress > STALL_MS) {
        const lacking = unheld(missing, sources)
        const why = sources.length === 0 ? 'no live host holds it' : `${lacking.length} of its chunks are held by no live host${bad.size > 0 ? ` (${bad.size} holder(s) served bad bytes)` : ''}`
        throw new ControlError('UNAVAILABLE', `cannot fetch image ${digest}: ${why}; ${missing.length} of ${manifest.chunks.length} chunks missing (kept: the fetch resumes when asked again)`)
      }
      await new Promise<void>((resolve) => {
        wake = resolve
        setTimeout(resolve, POLL_MS)
      })
      // Refusals are from gossip that was behind: give the holders another chance once it moves on.
      if (inFlight.size === 0) notHeld.clear()
    }
    const path = this.deps.store.path(digest) as string
    this.deps.advanced()
    this.deps.log.info('image fetched', { digest, sizeBytes: manifest.sizeBytes, ms: Date.now() - started })
    return path
  }

  /** The holder checks its copy of the chunk (a damaged one it stops serving and fetches again). */
  private async tellHolder (hostId: string, digest: string, chunk: number): Promise<void> {
    let damaged: boolean | undefined
    try {
      const res = decodeImageResponse(await this.deps.request(hostId, pb.ImageRequest.encode({ digest, checkChunk: chunk }).finish(), AbortSignal.timeout(CHECK_TIMEOUT_MS)))
      damaged = res.checked?.damaged === true
    } catch (err) {
      this.deps.log.warn('could not tell a holder that it served bad bytes', { digest, chunk, holder: hostId, err: (err as Error).message })
    }
    this.deps.badHolder(hostId, digest, chunk, damaged)
  }

  /** The holders to ask now: alive, not this host, not caught serving bad bytes, not resting after a failure. */
  private sources (holders: ImageHolder[], manifest: ImageManifest, bad: Set<string>, resting: Map<string, number>, load: Map<string, number>): ChunkSource[] {
    const now = Date.now()
    const list = holders.filter((h) => h.alive && h.hostId !== this.deps.selfId && !bad.has(h.hostId) && (resting.get(h.hostId) ?? 0) <= now)
    // Full copies and fetchers alike; shuffled so fetchers spread their asks over the holders.
    return shuffle(list.map((h) => ({ hostId: h.hostId, have: h.have.count === manifest.chunks.length ? h.have : HaveBitmap.empty(manifest.chunks.length), inFlight: load.get(h.hostId) ?? 0 })))
  }

  /** The manifest, from a holder of a complete copy; checked against the digest as far as it can be before the bytes. */
  private async manifest (digest: string, signal?: AbortSignal): Promise<ImageManifest> {
    const entry = this.deps.catalogue().byDigest.get(digest)
    const full = (entry?.holders ?? []).filter((h) => h.alive && h.hostId !== this.deps.selfId && h.have.complete())
    if (full.length === 0) throw new ControlError('UNAVAILABLE', `no live host holds a complete copy of image ${digest}${entry === undefined ? ' (no host holds it at all: import it again)' : ''}`)
    const errors: string[] = []
    for (const h of shuffle(full)) {
      try {
        const res = decodeImageResponse(await this.deps.request(h.hostId, pb.ImageRequest.encode({ digest, manifest: true }).finish(), signal ?? AbortSignal.timeout(30_000)))
        const m = manifestFromWire(res.manifest ?? {})
        const problem = manifestProblem(m, digest)
        if (problem === undefined) return m
        errors.push(`${h.hostname}: its manifest is wrong: ${problem}`)
      } catch (err) {
        errors.push(`${h.hostname}: ${(err as Error).message}`)
      }
    }
    throw new ControlError('UNAVAILABLE', `could not get the manifest of ${digest}: ${errors.join('; ')}`)
  }
}

function shuffle<T> (list: T[]): T[] {
  const out = [...list]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    const t = out[i] as T
    out[i] = out[j] as T
    out[j] = t
  }
  return out
}
