import type { ImageHolding, ImageTombstone } from '@meshvirt/mesh'
import { HaveBitmap } from './have-bitmap.js'
import { compareText } from '../util/compare-text.js'

/** One host's part, as the view has it. */
export interface CatalogueHost {
  hostId: string
  hostname: string
  alive: boolean
  images: readonly ImageHolding[]
  imageTombstones: readonly ImageTombstone[]
}

export interface ImageHolder {
  hostId: string
  hostname: string
  alive: boolean
  have: HaveBitmap
}

/** An image as the cluster knows it. */
export interface CatalogueImage {
  digest: string
  sizeBytes: number
  format: string
  chunkCount: number
  /** The names that currently point at it. */
  refs: string[]
  /** When the newest of those was given. */
  namedAtMs: number
  holders: ImageHolder[]
  /** VMs whose disks read it, on any host. */
  usedBy: string[]
}

export interface Catalogue {
  /** Every image some host holds, named or not. */
  byDigest: Map<string, CatalogueImage>
  /** NAME:TAG → the digest it names now. */
  byRef: Map<string, string>
  /** Every tombstone heard, newest per (ref, digest). */
  tombstones: ImageTombstone[]
}

/**
 * The library, from every host's gossip: which bytes each name points at, who holds them (and how
 * much of them), who uses them. A name is hidden by a tombstone for the same bytes deleted at or
 * after the name was given; if two byte sets carry a name, the more recently named wins. Pure.
 */
export function catalogueOf (hosts: readonly CatalogueHost[]): Catalogue {
  const tombs = new Map<string, ImageTombstone>()
  for (const h of hosts) {
    for (const t of h.imageTombstones) {
      const key = `${t.ref}@${t.digest}`
      const seen = tombs.get(key)
      if (seen === undefined || t.deletedAtMs > seen.deletedAtMs) tombs.set(key, t)
    }
  }
  const byDigest = new Map<string, CatalogueImage>()
  const named = new Map<string, { digest: string, at: number }>()
  for (const h of hosts) {
    for (const img of h.images) {
      let entry = byDigest.get(img.digest)
      if (entry === undefined) {
        entry = { digest: img.digest, sizeBytes: img.sizeBytes, format: img.format, chunkCount: img.chunkCount, refs: [], namedAtMs: 0, holders: [], usedBy: [] }
        byDigest.set(img.digest, entry)
      }
      entry.holders.push({ hostId: h.hostId, hostname: h.hostname, alive: h.alive, have: HaveBitmap.from(img.chunkCount, img.have) })
      for (const vm of img.usedBy) if (!entry.usedBy.includes(vm)) entry.usedBy.push(vm)
      for (const ref of img.refs) {
        const tomb = tombs.get(`${ref}@${img.digest}`)
        if (tomb !== undefined && tomb.deletedAtMs >= img.namedAtMs) continue
        const cur = named.get(ref)
        if (cur === undefined || img.namedAtMs > cur.at || (img.namedAtMs === cur.at && img.digest < cur.digest)) named.set(ref, { digest: img.digest, at: img.namedAtMs })
      }
    }
  }
  const byRef = new Map<string, string>()
  for (const [ref, { digest, at }] of [...named].sort(([a], [b]) => compareText(a, b))) {
    byRef.set(ref, digest)
    const entry = byDigest.get(digest) as CatalogueImage
    entry.refs.push(ref)
    entry.namedAtMs = Math.max(entry.namedAtMs, at)
  }
  for (const e of byDigest.values()) {
    e.usedBy.sort()
    e.holders.sort((a, b) => b.have.held() - a.have.held() || compareText(a.hostId, b.hostId))
  }
  return { byDigest, byRef, tombstones: [...tombs.values()] }
}
