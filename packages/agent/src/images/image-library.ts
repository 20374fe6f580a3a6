import type { ClusterView, ImageHolding, ImageTombstone } from '@meshvirt/mesh'
import { inspectImage, type ImageSources } from '@meshvirt/hypervisor'
import type { meshvirt } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'
import type { Logger } from '../log/logger.js'
import type { ClusterClaims } from '../network/cluster-claims.js'
import { catalogueOf, type Catalogue, type CatalogueImage } from './catalogue.js'
import { canonicalRef } from './image-ref.js'
import type { ImageStore, StoredImage } from './image-store.js'
import { IMAGE_FORMATS, type ImageFormat } from './manifest.js'

/** A removed name is gossiped this long, then forgotten (every live host has heard it by then). */
export const TOMBSTONE_TTL_MS = 24 * 3_600_000

export interface ImageLibraryDeps {
  store: ImageStore
  sources: ImageSources
  /** The VM ids on this host whose disks read each digest. */
  usersHere: () => Map<string, string[]>
  log: Logger
  now?: () => number
}

/**
 * The library as one host sees and changes it: its own holdings and tombstones in the advert, the
 * cluster's catalogue from every advert, and import, list, inspect and remove. Names are claimed at
 * the authorities of `img:NAME:TAG` (one digest per name), like VM names.
 */
export class ImageLibrary {
  private view: ClusterView | undefined
  private claims: ClusterClaims | undefined
  private selfId = ''
  private readonly tombstones = new Map<string, ImageTombstone>()
  private readonly now: () => number

  constructor (private readonly deps: ImageLibraryDeps) {
    this.now = deps.now ?? Date.now
  }

  attach (view: ClusterView, claims: ClusterClaims, selfId: string): void {
    this.view = view
    this.claims = claims
    this.selfId = selfId
  }

  /** This host's part of its advert. */
  advert (): { images: ImageHolding[], imageTombstones: ImageTombstone[] } {
    const users = this.deps.usersHere()
    const images = this.deps.store.list().map((img) => holding(img, users.get(img.manifest.digest) ?? []))
    const cutoff = this.now() - TOMBSTONE_TTL_MS
    for (const [k, t] of this.tombstones) if (t.deletedAtMs < cutoff) this.tombstones.delete(k)
    return { images, imageTombstones: [...this.tombstones.values()] }
  }

  /** The cluster's library, from every advert (this host's own from its store, always current). */
  catalogue (): Catalogue {
    const users = this.deps.usersHere()
    const own = { hostId: this.selfId, hostname: 'this host', alive: true, images: this.deps.store.list().map((img) => holding(img, users.get(img.manifest.digest) ?? [])), imageTombstones: [...this.tombstones.values()] }
    const others = (this.view?.hosts() ?? []).filter((h) => !h.self).map((h) => ({
      hostId: h.hostId, hostname: h.advert.hostname, alive: h.liveness !== 'dead', images: h.advert.images, imageTombstones: h.advert.imageTombstones
    }))
    const self = this.view?.hosts().find((h) => h.self)
    return catalogueOf([{ ...own, hostname: self?.advert.hostname ?? own.hostname }, ...others])
  }

  /**
   * Follows removals heard from other hosts: a name with a tombstone newer than its naming is dropped
   * here too, and the tombstone kept and gossiped on (it outlives the host that removed it).
   * Returns whether anything changed.
   */
  async adoptTombstones (): Promise<boolean> {
    let changed = false
    for (const t of this.catalogue().tombstones) {
      const key = `${t.ref}@${t.digest}`
      if ((this.tombstones.get(key)?.deletedAtMs ?? -1) < t.deletedAtMs && t.deletedAtMs >= this.now() - TOMBSTONE_TTL_MS) { this.tombstones.set(key, t); changed = true }
      const img = this.deps.store.get(t.digest)
      if (img !== undefined && img.refs.includes(t.ref) && img.namedAtMs <= t.deletedAtMs) {
        await this.deps.store.unname(t.digest, t.ref)
        changed = true
      }
    }
    return changed
  }

  /** `image import`: the file checked, copied in (content-addressed), and its name claimed cluster-wide. */
  async import (req: meshvirt.v1.IImportImage, idempotencyKey: string): Promise<{ image: StoredImage, imported: boolean }> {
    const ref = canonicalRef(req.ref ?? '')
    const path = await this.deps.sources.check(req.path ?? '', 'base image').catch((err: Error) => { throw new ControlError('INVALID_ARGUMENT', err.message) })
    const info = await inspectImage(path).catch((err: Error) => { throw new ControlError('INVALID_ARGUMENT', err.message) })
    if (!(IMAGE_FORMATS as readonly string[]).includes(info.format)) throw new ControlError('INVALID_ARGUMENT', `${path} is a ${info.format} image; the library takes qcow2 or raw (convert it: qemu-img convert -O qcow2 …)`)
    if (info.backingFile !== undefined) throw new ControlError('INVALID_ARGUMENT', `${path} is an overlay on ${info.backingFile}; import a standalone image (qemu-img convert -O qcow2 ${path} flat.qcow2)`)
    const taken = this.claimed(ref)
    const { image, imported } = await this.deps.store.importFile(path, info.format as ImageFormat, ref, this.now())
    const digest = image.manifest.digest
    if (taken !== undefined && taken !== digest) {
      await this.forget(digest, ref, imported)
      throw new ControlError('ALREADY_EXISTS', `image ${ref} already names ${taken}: import these bytes under a new tag (--name ${ref.split(':')[0] ?? ''}:NEW-TAG), or remove ${ref} first`)
    }
    await this.claim(ref, digest, idempotencyKey, imported)
    this.tombstones.delete(`${ref}@${digest}`)
    this.deps.log.info(imported ? 'image imported' : 'image already held: name added', { ref, digest, sizeBytes: image.manifest.sizeBytes, format: image.manifest.format })
    return { image, imported }
  }

  /** `image rm`: the name is released and a tombstone gossiped; the bytes stay where a VM needs them. */
  async remove (text: string): Promise<CatalogueImage> {
    const ref = canonicalRef(text)
    const cat = this.catalogue()
    const digest = cat.byRef.get(ref)
    if (digest === undefined) throw new ControlError('NOT_FOUND', `no image named ${ref} (meshvirt image ls lists them)`)
    const entry = cat.byDigest.get(digest) as CatalogueImage
    this.tombstones.set(`${ref}@${digest}`, { ref, digest, deletedAtMs: this.now() })
    await this.deps.store.unname(digest, ref)
    await this.claims?.release(`img:${ref}`, digest)
    this.deps.log.info('image name removed', { ref, digest })
    return entry
  }

  /** The digest a name points at now, or NOT_FOUND saying where to look. */
  resolve (text: string): CatalogueImage {
    const ref = canonicalRef(text)
    const cat = this.catalogue()
    const digest = cat.byRef.get(ref)
    const entry = digest === undefined ? undefined : cat.byDigest.get(digest)
    if (entry === undefined) throw new ControlError('NOT_FOUND', `no image named ${ref} in the library (meshvirt image ls; import one with meshvirt image import FILE --name ${ref})`)
    return entry
  }

  /** The digest the gossip says a name claim key (`img:NAME:TAG`) is held by. */
  keyUser (key: string): string | undefined {
    if (!key.startsWith('img:')) return undefined
    return this.catalogue().byRef.get(key.slice(4))
  }

  private claimed (ref: string): string | undefined {
    return this.catalogue().byRef.get(ref)
  }

  private async claim (ref: string, digest: string, idempotencyKey: string, imported: boolean): Promise<void> {
    if (this.claims === undefined) return
    const key = `img:${ref}`
    const result = await this.claims.claim(key, digest, idempotencyKey).catch(async (err: unknown) => { await this.forget(digest, ref, imported); throw err })
    if (!result.granted && result.holder !== digest) {
      await this.forget(digest, ref, imported)
      throw new ControlError('ALREADY_EXISTS', `image ${ref} already names ${result.holder}${result.contended ? ' (another import of it raced this one)' : ''}: import under a new tag`)
    }
    if (result.granted) await this.claims.bind(key, digest)
  }

  /** Undoes an import that may not stand: the name, and the bytes if they came with it. */
  private async forget (digest: string, ref: string, imported: boolean): Promise<void> {
    if (imported) await this.deps.store.remove(digest)
    else await this.deps.store.unname(digest, ref)
  }
}

export function holding (img: StoredImage, usedBy: string[]): ImageHolding {
  return {
    digest: img.manifest.digest,
    sizeBytes: img.manifest.sizeBytes,
    format: img.manifest.format,
    refs: img.refs,
    chunkCount: img.manifest.chunks.length,
    have: img.have.toBytes(),
    namedAtMs: img.namedAtMs,
    usedBy
  }
}

/** The control API's form of a catalogue entry, under one of its names. */
export function imageInfo (e: CatalogueImage, ref: string, imported = false): meshvirt.v1.IImageInfo {
  return {
    ref,
    digest: e.digest,
    sizeBytes: e.sizeBytes,
    format: e.format,
    chunkCount: e.chunkCount,
    holders: e.holders.map((h) => ({ hostId: h.hostId, hostname: h.hostname, chunksHeld: h.have.held(), alive: h.alive })),
    usedBy: e.usedBy,
    imported
  }
}
