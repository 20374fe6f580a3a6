import type { ClusterView, HostAdvertContent, MeshNode } from '@meshvirt/mesh'
import type { ImageSources } from '@meshvirt/hypervisor'
import { pb } from '@meshvirt/proto'
import type { Handler } from '../control/control-handler.js'
import { ControlError } from '../control/errors.js'
import type { Logger } from '../log/logger.js'
import type { PeerClient } from '../negotiate/peer-client.js'
import type { SpecClaims } from '../negotiate/spec-claims.js'
import { ClusterClaims } from '../network/cluster-claims.js'
import { TokenBucket } from '../replica/token-bucket.js'
import type { VmRow } from '../store/state-store.js'
import type { VmResource } from '../vm/vm-preparation.js'
import { ImageFetcher } from './image-fetcher.js'
import { ImageLibrary, imageInfo } from './image-library.js'
import { CHUNK_TIMEOUT_MS, IMAGE_PROTOCOL, imageServer, MAX_INBOUND_CHUNKS } from './image-protocol.js'
import { canonicalRef } from './image-ref.js'
import { imageResource } from './image-resource.js'
import { ImageStore } from './image-store.js'
import { CHUNK_BYTES } from './manifest.js'

/** A fetch re-advertises this often at most, so other fetchers learn the chunks it has. */
const ADVERT_EVERY_MS = 1_000

export interface ImagesDeps {
  /** `<dataDir>/images`. */
  dir: string
  sources: ImageSources
  /** Bytes per second all fetches of this host share (0: unbounded). */
  bandwidth: number
  localVms: () => VmRow[]
  readvertise: () => void
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
  readonly resource: VmResource
  private advertTimer: NodeJS.Timeout | undefined
  private unsubscribe: (() => void) | undefined
  private followQueued = false

  constructor (private readonly deps: ImagesDeps) {
    this.store = new ImageStore(deps.dir)
    this.library = new ImageLibrary({ store: this.store, sources: deps.sources, usersHere: () => this.usersHere(), log: deps.log })
    // The fetcher needs the mesh; the resource asks for it when a VM is prepared (always after attach).
    this.resource = {
      name: 'image',
      prepare: async (vm, driver) => await imageResource({ store: this.store, fetcher: this.requireFetcher(), log: deps.log }).prepare(vm, driver),
      release: () => {}
    }
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
      request: async (hostId, bytes, signal) => await mesh.node.request(hostId, IMAGE_PROTOCOL, bytes, { signal, timeoutMs: CHUNK_TIMEOUT_MS, maxResponseBytes: CHUNK_BYTES + 1024 }),
      ...(this.deps.bandwidth > 0 ? { bucket: new TokenBucket({ bytesPerSec: this.deps.bandwidth, burstBytes: 4 * CHUNK_BYTES }) } : {}),
      advanced: () => { this.advertiseSoon() },
      badHolder: () => {},
      log: this.deps.log
    })
    await mesh.node.handle(IMAGE_PROTOCOL, imageServer(this.store), { timeoutMs: CHUNK_TIMEOUT_MS, maxInboundRequests: MAX_INBOUND_CHUNKS })
    this.unsubscribe = mesh.view.subscribe((e) => { if (!e.host.self && e.type !== 'removed') this.followSoon() })
  }

  async stop (node?: Pick<MeshNode, 'unhandle'>): Promise<void> {
    this.unsubscribe?.()
    clearTimeout(this.advertTimer)
    await node?.unhandle(IMAGE_PROTOCOL).catch(() => {})
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
      const ref = spec.boot?.library?.ref ?? ''
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
      removeImage: async (req) => {
        const entry = await this.library.remove(req.removeImage?.ref ?? '')
        await this.evict()
        this.deps.readvertise()
        return { image: imageInfo(entry, canonicalRef(req.removeImage?.ref ?? '')) }
      }
    }
  }

  /** The bytes no name and no VM here needs any more are deleted. */
  async evict (): Promise<void> {
    const users = this.usersHere()
    for (const img of this.store.list()) {
      if (img.refs.length > 0 || (users.get(img.manifest.digest)?.length ?? 0) > 0 || !img.have.complete()) continue
      this.deps.log.info('image bytes evicted: no name and no VM here needs them', { digest: img.manifest.digest })
      await this.store.remove(img.manifest.digest)
    }
  }

  /** For each digest, the VMs on this host whose disks read it. */
  private usersHere (): Map<string, string[]> {
    const out = new Map<string, string[]>()
    for (const vm of this.deps.localVms()) {
      const digest = pb.VmSpec.decode(vm.spec).boot?.library?.digest ?? ''
      if (digest === '') continue
      out.set(digest, [...out.get(digest) ?? [], vm.id])
    }
    return out
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
