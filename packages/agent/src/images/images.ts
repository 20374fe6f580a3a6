import type { ClusterView, HostAdvertContent, MeshNode } from '@meshvirt/mesh'
import type { ImageSources } from '@meshvirt/hypervisor'
import type { VmSpec } from '../vm/vm-spec-codec.js'
import type { Handler } from '../control/control-handler.js'
import { ControlError } from '../control/errors.js'
import type { Logger } from '../log/logger.js'
import type { PeerClient } from '../negotiate/peer-client.js'
import type { SpecClaims } from '../negotiate/spec-claims.js'
import { ClusterClaims } from '../network/cluster-claims.js'
import { TokenBucket } from '../replica/token-bucket.js'
import type { VmRow } from '../store/state-store.js'
import { BufferPool } from './buffer-pool.js'
import { ChunkTransport } from './chunk-transport.js'
import { DirectChunkServer, SERVED_BUFFERS } from './direct-chunks.js'
import { ImageFetcher } from './image-fetcher.js'
import { ImageLibrary, imageInfo } from './image-library.js'
import { CHUNK_ENVELOPE_ROOM, CHUNK_TIMEOUT_MS, IMAGE_PROTOCOL, imageServer, MAX_INBOUND_CHUNKS } from './image-protocol.js'
import { canonicalRef } from './image-ref.js'
import { imageResource, type FetchOutcome, type ImageResource } from './image-resource.js'
import { replicaBases } from './replica-bases.js'
import type { BaseImages } from '../replica/base-images.js'
import { copiesToMake, imagesToEvict } from './image-upkeep.js'
import { ImageStore } from './image-store.js'
import { CHUNK_BYTES } from './manifest.js'

/** A fetch re-advertises this often at most, so other fetchers learn the chunks it has. */
const ADVERT_EVERY_MS = 1_000
/** How often copies are counted and the cache trimmed. */
export const UPKEEP_MS = 5_000
/** A host asked to hold a copy is not asked again for this long (its fetch shows in its advert meanwhile). */
const ASKED_AGAIN_MS = 60_000

export interface ImagesDeps {
  /** `<dataDir>/images`. */
  dir: string
  sources: ImageSources
  /** Where this host serves chunks directly (TLS-PSK, its underlay address); undefined: the mesh only. */
  directAddress?: string
  /** Bytes per second all fetches of this host share, and all it serves (0: unbounded). */
  bandwidth: number
  localVms: () => VmRow[]
  /** The specs of the replicas this host holds for other owners (their base images stay here). */
  heldSpecs: () => Array<{ vmId: string, spec: VmSpec }>
  /** Each named image is kept on this many hosts; unused ones beyond `cacheBytes` are evicted. */
  copies: number
  cacheBytes: number
  readvertise: () => void
  /** A fetch a VM waited for ended (the event stream). */
  fetched?: (f: FetchOutcome) => void
  log: Logger
}

/**
 * The image library as a component of the agent (docs/images.md): the store, the catalogue from
 * gossip, the fetch swarm and its protocol, the `image` commands, a VM's image as a per-VM resource,
 * and the broker's resolution of a name to the digest every host of the VM then uses.
 */
export class Images {
  readonly store: ImageStore
  readonly library: ImageLibrary
  private fetcher: ImageFetcher | undefined
  readonly resource: ImageResource
  /** Base images of the replicas held here (replica/base-images.ts). */
  readonly bases: BaseImages
  private advertTimer: NodeJS.Timeout | undefined
  private unsubscribe: (() => void) | undefined
  private followQueued = false
  private upkeepTimer: NodeJS.Timeout | undefined
  private readonly asked = new Map<string, number>()
  /** Images whose damaged copy here is being checked and fetched again. */
  private readonly repairing = new Set<string>()
  private mesh: { selfId: string, view: ClusterView, peers: PeerClient } | undefined
  private transport: ChunkTransport | undefined
  private direct: DirectChunkServer | undefined

  constructor (private readonly deps: ImagesDeps) {
    this.store = new ImageStore(deps.dir)
    this.library = new ImageLibrary({ store: this.store, sources: deps.sources, usersHere: () => this.usersHere(), log: deps.log })
    // The fetcher needs the mesh; the resource asks for it when a VM is prepared (always after attach).
    this.resource = imageResource({ store: this.store, fetcher: () => this.requireFetcher(), log: deps.log, fetched: deps.fetched })
    this.bases = replicaBases({ store: this.store, fetcher: () => this.fetcher, log: deps.log })
  }

  async load (): Promise<void> {
    await this.store.load()
  }

  async attach (mesh: { selfId: string, view: ClusterView, peers: PeerClient, node: Pick<MeshNode, 'handle' | 'unhandle' | 'request'> }): Promise<void> {
    this.library.attach(mesh.view, new ClusterClaims({ selfId: mesh.selfId, view: mesh.view, peers: mesh.peers, log: this.deps.log }), mesh.selfId)
    this.fetcher = new ImageFetcher({
      selfId: mesh.selfId,
      store: this.store,
      catalogue: () => this.library.catalogue(),
      request: async (hostId, bytes, signal) => await (this.transport as ChunkTransport).request(hostId, bytes, signal),
      recycle: (answer) => { this.transport?.recycle(answer) },
      ...(this.deps.bandwidth > 0 ? { bucket: new TokenBucket({ bytesPerSec: this.deps.bandwidth, burstBytes: 4 * CHUNK_BYTES }) } : {}),
      advanced: () => { this.advertiseSoon() },
      badHolder: (hostId, digest, chunk, damaged) => {
        const fields = { digest, chunk, holder: hostId }
        if (damaged === true) this.deps.log.warn('a holder found its copy of an image damaged: it repairs it', fields)
        else if (damaged === false) this.deps.log.warn('a holder\'s copy of an image is sound: the bytes were damaged on the way', fields)
      },
      log: this.deps.log
    })
    this.transport = new ChunkTransport({
      mesh: async (hostId, bytes, signal) => await mesh.node.request(hostId, IMAGE_PROTOCOL, bytes, { signal, timeoutMs: CHUNK_TIMEOUT_MS, maxResponseBytes: CHUNK_BYTES + 1024, ownStream: true }),
      timeoutMs: CHUNK_TIMEOUT_MS,
      direct: this.deps.directAddress !== undefined,
      log: this.deps.log
    })
    // What this host serves is bounded like what it fetches (the same setting, its own bucket).
    const upload = this.deps.bandwidth > 0 ? new TokenBucket({ bytesPerSec: this.deps.bandwidth, burstBytes: 4 * CHUNK_BYTES }) : undefined
    const bounded = (answer: (bytes: Uint8Array, peer?: string) => Promise<Uint8Array>) => async (bytes: Uint8Array, peer?: string): Promise<Uint8Array> => {
      const res = await answer(bytes, peer)
      if (res.length > 64 * 1024) await upload?.take(res.length)
      return res
    }
    const repair = (digest: string, damaged: number[], peer?: string): void => { this.repair(digest, damaged, peer) }
    let direct: DirectChunkServer | undefined
    if (this.deps.directAddress !== undefined) {
      const buffers = new BufferPool(CHUNK_BYTES + CHUNK_ENVELOPE_ROOM, SERVED_BUFFERS)
      direct = new DirectChunkServer(this.deps.directAddress, bounded(imageServer(this.store, { repair, buffers })), buffers)
      await direct.start()
      this.direct = direct
    }
    const serve = bounded(imageServer(this.store, { repair, ...(direct === undefined ? {} : { direct: (peer: string) => (direct as DirectChunkServer).open(peer) }) }))
    await mesh.node.handle(IMAGE_PROTOCOL, async (bytes, peer) => await serve(bytes, peer), { timeoutMs: CHUNK_TIMEOUT_MS, maxInboundRequests: MAX_INBOUND_CHUNKS })
    this.unsubscribe = mesh.view.subscribe((e) => { if (!e.host.self && e.type !== 'removed') this.followSoon() })
    this.mesh = mesh
    this.upkeepTimer = setInterval(() => {
      void this.upkeep().catch((err: unknown) => { this.deps.log.warn('image upkeep failed', { err: (err as Error).message }) })
    }, UPKEEP_MS)
    this.upkeepTimer.unref()
  }

  /**
   * Copies and cache: asks hosts to hold the named images this host must see copied (copiesToMake),
   * and deletes what the cache may let go (imagesToEvict).
   */
  async upkeep (): Promise<void> {
    const mesh = this.mesh
    if (mesh === undefined) return
    const catalogue = this.library.catalogue()
    const hosts = mesh.view.hosts().map((h) => ({ hostId: h.hostId, alive: h.liveness !== 'dead', active: h.advert.state === 'active' || h.advert.state === 'unspecified', labels: h.advert.labels }))
    const now = Date.now()
    for (const [k, until] of this.asked) if (until < now) this.asked.delete(k)
    for (const order of copiesToMake(mesh.selfId, catalogue, hosts, this.deps.copies)) {
      const key = `${order.digest}/${order.target}`
      if (this.asked.has(key)) continue
      this.asked.set(key, now + ASKED_AGAIN_MS)
      this.deps.log.info('asking a host to hold a copy of an image', { digest: order.digest, host: order.target, copies: this.deps.copies })
      await mesh.peers.control(order.target, { holdImage: { ref: order.digest } }, 10_000).catch((err: unknown) => {
        this.deps.log.warn('a host did not take a copy of an image', { digest: order.digest, host: order.target, err: (err as Error).message })
      })
    }
    await this.evict()
  }

  async stop (node?: Pick<MeshNode, 'unhandle'>): Promise<void> {
    this.unsubscribe?.()
    clearTimeout(this.advertTimer)
    clearInterval(this.upkeepTimer)
    this.transport?.close()
    await this.direct?.stop()
    await node?.unhandle(IMAGE_PROTOCOL).catch(() => {})
    await this.store.close()
  }

  advert (): Pick<HostAdvertContent, 'images' | 'imageTombstones'> {
    return this.library.advert()
  }

  keyUser (key: string): string | undefined {
    return this.library.keyUser(key)
  }

  /** At create: the spec's library image resolved to the digest every host of the VM will use. */
  readonly claims: SpecClaims<undefined> = {
    assign: async (spec) => {
      const ref = spec.boot.library?.ref ?? ''
      if (ref === '') return { spec, held: undefined }
      const entry = this.library.resolve(ref)
      if (!entry.holders.some((h) => h.alive && h.have.complete())) {
        throw new ControlError('UNAVAILABLE', `no live host holds a complete copy of image ${canonicalRef(ref)} (${entry.digest}); its holders: ${entry.holders.map((h) => `${h.hostname} (${h.alive ? 'partial' : 'dead'})`).join(', ')}`)
      }
      return { spec: { ...spec, boot: { ...spec.boot, library: { ref: canonicalRef(ref), digest: entry.digest } } }, held: undefined }
    },
    bind: async () => {},
    release: async () => {}
  }

  handlers (): Record<string, Handler> {
    return {
      importImage: async (req) => {
        const { image, imported } = await this.library.import(req.importImage ?? {}, req.idempotencyKey !== '' ? req.idempotencyKey : req.requestId)
        this.deps.readvertise()
        const ref = canonicalRef(req.importImage?.ref ?? '')
        const entry = this.library.catalogue().byDigest.get(image.manifest.digest)
        if (entry === undefined) throw new ControlError('INTERNAL', `image ${ref} was imported but is not in the catalogue`)
        return { image: imageInfo(entry, ref, imported) }
      },
      listImages: async () => {
        const cat = this.library.catalogue()
        const images = [...cat.byRef].map(([ref, digest]) => imageInfo(cat.byDigest.get(digest) as never, ref))
        return { imageList: { images } }
      },
      inspectImage: async (req) => {
        const ref = req.inspectImage?.ref ?? ''
        return { image: imageInfo(this.library.resolve(ref), canonicalRef(ref)) }
      },
      holdImage: async (req) => {
        const digest = req.holdImage?.ref ?? ''
        const entry = this.library.catalogue().byDigest.get(digest)
        if (entry === undefined) throw new ControlError('NOT_FOUND', `no host holds image ${digest}`)
        const started = Date.now()
        const ref = entry.refs[0] ?? ''
        const had = this.store.path(digest) !== undefined
        void this.requireFetcher().fetch(digest).then(
          () => {
            this.deps.log.info('holding a copy of an image', { digest })
            if (!had) this.deps.fetched?.({ digest, ref, sizeBytes: entry.sizeBytes, ms: Date.now() - started, vmId: '' })
          },
          (err: unknown) => {
            this.deps.log.warn('could not fetch a copy of an image', { digest, err: (err as Error).message })
            this.deps.fetched?.({ digest, ref, sizeBytes: entry.sizeBytes, ms: Date.now() - started, vmId: '', error: (err as Error).message })
          })
        return { image: imageInfo(entry, entry.refs[0] ?? '') }
      },
      removeImage: async (req) => {
        const entry = await this.library.remove(req.removeImage?.ref ?? '')
        await this.evict()
        this.deps.readvertise()
        return { image: imageInfo(entry, canonicalRef(req.removeImage?.ref ?? '')) }
      }
    }
  }

  /** What the cache lets go (imagesToEvict): unnamed and unused, then unused beyond the budget, oldest-used first. */
  async evict (): Promise<void> {
    const users = this.usersHere()
    const catalogue = this.library.catalogue()
    const cached = this.store.list().map((img) => {
      const entry = catalogue.byDigest.get(img.manifest.digest)
      return {
        digest: img.manifest.digest,
        sizeBytes: img.manifest.sizeBytes,
        usedAtMs: img.usedAtMs,
        complete: img.have.complete(),
        users: users.get(img.manifest.digest)?.length ?? 0,
        named: img.refs.length > 0,
        liveCopies: entry?.holders.filter((h) => h.alive && h.have.complete()).length ?? 1
      }
    })
    for (const digest of imagesToEvict(cached, this.deps.cacheBytes, this.deps.copies)) {
      this.deps.log.info('image bytes evicted from this host', { digest })
      await this.store.remove(digest)
      this.deps.readvertise()
    }
  }

  /** For each digest, the VMs on this host whose disks read it, and those whose replicas held here start from it. */
  private usersHere (): Map<string, string[]> {
    const out = new Map<string, string[]>()
    for (const vm of [...this.deps.localVms().map((v) => ({ vmId: v.id, spec: v.spec })), ...this.deps.heldSpecs()]) {
      const digest = vm.spec.boot.library?.digest ?? ''
      if (digest === '') continue
      out.set(digest, [...out.get(digest) ?? [], vm.vmId])
    }
    return out
  }

  /**
   * Chunks of a copy here were found damaged (a fetcher was served them, and the store checked): they
   * are no longer served or advertised, and are fetched again from the other holders.
   */
  private repair (digest: string, damaged: number[], reportedBy?: string): void {
    this.deps.log.warn('chunks of an image here are damaged on disk: no longer served; the whole copy is checked and fetched again where damaged', { digest, chunks: damaged, reportedBy })
    this.deps.readvertise()
    if (this.repairing.has(digest)) return
    this.repairing.add(digest)
    const entry = this.library.catalogue().byDigest.get(digest)
    const started = Date.now()
    const outcome = { digest, ref: entry?.refs[0] ?? '', sizeBytes: entry?.sizeBytes ?? 0, vmId: '' }
    void this.requireFetcher().repair(digest).then(
      (r) => {
        this.deps.log.info('an image\'s damaged chunks were fetched again: the copy is whole', { digest, chunks: r.damaged })
        this.deps.fetched?.({ ...outcome, ms: Date.now() - started, repairedChunks: r.damaged })
      },
      (err: unknown) => {
        const left = this.store.get(digest)
        const count = left === undefined ? damaged.length : left.manifest.chunks.length - left.have.held()
        this.deps.log.warn('could not repair an image\'s damaged chunks (its VMs here keep reading them)', { digest, chunks: count, err: (err as Error).message })
        this.deps.fetched?.({ ...outcome, ms: Date.now() - started, repairedChunks: count, error: (err as Error).message })
      }).finally(() => { this.repairing.delete(digest) })
  }

  private requireFetcher (): ImageFetcher {
    if (this.fetcher === undefined) throw new ControlError('UNAVAILABLE', 'the image library is not attached to the mesh yet')
    return this.fetcher
  }

  private advertiseSoon (): void {
    if (this.advertTimer !== undefined) return
    this.advertTimer = setTimeout(() => { this.advertTimer = undefined; this.deps.readvertise() }, ADVERT_EVERY_MS)
    this.advertTimer.unref()
  }

  /** Another host's advert changed: its removals are followed here (names dropped, bytes evicted). */
  private followSoon (): void {
    if (this.followQueued) return
    this.followQueued = true
    setTimeout(() => {
      this.followQueued = false
      void (async () => {
        if (await this.library.adoptTombstones()) {
          await this.evict()
          this.deps.readvertise()
        }
      })().catch((err: unknown) => { this.deps.log.warn('could not follow the library\'s removals', { err: (err as Error).message }) })
    }, 200).unref()
  }
}
