import { createHash } from 'node:crypto'
import type { Catalogue } from './catalogue.js'
import { compareText } from '../util/compare-text.js'

/** A host as the upkeep sees it. */
export interface UpkeepHost {
  hostId: string
  alive: boolean
  /** Takes new work (not draining). */
  active: boolean
  labels: Readonly<Record<string, string>>
}

/** Failure-domain label keys, widest first: copies go to another site, else zone, else rack. */
export const DOMAIN_KEYS = ['site', 'zone', 'rack'] as const

export interface CopyOrder { digest: string, target: string }

/**
 * The copies this host must have made so each named image is held by at least `copies` live hosts
 * (hosts still fetching count: they will hold it). Decided by one host per image without a message:
 * the live full holder with the lowest id. Targets are the live active hosts that hold none of it,
 * those in a failure domain no holder is in first, then by a hash of (digest, host) so different
 * images land on different hosts. Pure.
 */
export function copiesToMake (selfId: string, catalogue: Catalogue, hosts: readonly UpkeepHost[], copies: number): CopyOrder[] {
  const byId = new Map(hosts.map((h) => [h.hostId, h]))
  const orders: CopyOrder[] = []
  for (const image of catalogue.byDigest.values()) {
    if (image.refs.length === 0) continue
    const live = image.holders.filter((h) => byId.get(h.hostId)?.alive === true)
    const full = live.filter((h) => h.have.complete()).map((h) => h.hostId).sort()
    if (full[0] !== selfId || live.length >= copies) continue
    const held = new Set(image.holders.map((h) => h.hostId))
    const key = DOMAIN_KEYS.find((k) => live.some((h) => byId.get(h.hostId)?.labels[k] !== undefined))
    const domains = new Set(live.map((h) => key === undefined ? h.hostId : byId.get(h.hostId)?.labels[key]))
    const rank = (id: string): string => createHash('sha256').update(`${image.digest}/${id}`).digest('hex')
    const candidates = hosts
      .filter((h) => h.alive && h.active && !held.has(h.hostId))
      .map((h) => ({ id: h.hostId, newDomain: key === undefined || !domains.has(h.labels[key]), rank: rank(h.hostId) }))
      .sort((a, b) => Number(b.newDomain) - Number(a.newDomain) || compareText(a.rank, b.rank))
    for (const c of candidates.slice(0, copies - live.length)) orders.push({ digest: image.digest, target: c.id })
  }
  return orders
}

export interface CachedImage {
  digest: string
  sizeBytes: number
  usedAtMs: number
  complete: boolean
  /** VMs on this host whose disks read it. */
  users: number
  /** Named in the library. */
  named: boolean
  /** Live full holders cluster-wide, this host included. */
  liveCopies: number
}

/**
 * The images to delete from this host: every complete one that no name and no VM here needs; then,
 * while the unused ones take more than `budgetBytes`, the least recently used — never one a VM here
 * reads, never a copy the library's count needs (`copies`), never one still being fetched. Pure.
 */
export function imagesToEvict (images: readonly CachedImage[], budgetBytes: number, copies: number): string[] {
  const out: string[] = []
  const unused = images.filter((i) => i.complete && i.users === 0)
  for (const i of unused) if (!i.named) out.push(i.digest)
  let kept = unused.filter((i) => i.named).reduce((n, i) => n + i.sizeBytes, 0)
  for (const i of unused.filter((x) => x.named && x.liveCopies > copies).sort((a, b) => a.usedAtMs - b.usedAtMs)) {
    if (kept <= budgetBytes) break
    out.push(i.digest)
    kept -= i.sizeBytes
  }
  return out
}
