import type { KnownVm, VmTombstone } from '../store/vm-record-store.js'
import { compareText } from '../util/compare-text.js'

/** A known VM's record is rewritten when the owner still gossips it unchanged, at most this often (bounds store writes to ~1 per VM per this). */
export const KNOWN_REFRESH_MS = 30_000
/** Tombstones outlive any owner outage worth waiting for; older ones are dropped. */
export const TOMBSTONE_TTL_MS = 7 * 24 * 3_600_000
/** At most this many tombstones are kept (the newest): bounds the store and each exchange. */
export const MAX_TOMBSTONES = 1_000

/** The part of a host's latest advert this file reads. */
export interface AdvertFacts {
  hostId: string
  hostname: string
  vms: ReadonlyArray<{ id: string, name: string, epoch: number, role: string, state: string, group: string, resources: { vcpus: number, memoryBytes: number, diskBytes: number } }>
}

/**
 * What a host's latest advert changes in the records of VMs it owns: VMs it lists are put (when new,
 * changed, or not refreshed for KNOWN_REFRESH_MS); VMs recorded as its own that it no longer
 * lists are deleted (it deleted them, or they moved: the new owner's advert puts them back). A
 * record of a higher epoch on another owner is not overwritten by an older owner's advert, and
 * tombstoned VMs are never put back. Pure.
 */
export function reconcileAdvert (advert: AdvertFacts, known: ReadonlyMap<string, KnownVm>, tombstoned: (id: string) => boolean, now: number): { put: KnownVm[], drop: string[] } {
  const put: KnownVm[] = []
  const listed = new Set<string>()
  for (const v of advert.vms) {
    if (v.role !== 'owner') continue
    listed.add(v.id)
    if (tombstoned(v.id)) continue
    const old = known.get(v.id)
    if (old !== undefined && old.owner !== advert.hostId && old.epoch > v.epoch) continue
    const next: KnownVm = { id: v.id, name: v.name, owner: advert.hostId, ownerHostname: advert.hostname, epoch: v.epoch, state: v.state, group: v.group, resources: { ...v.resources }, lastHeardAt: now }
    if (old !== undefined && sameFacts(old, next) && now - old.lastHeardAt < KNOWN_REFRESH_MS) continue
    put.push(next)
  }
  const drop = [...known.values()].filter((k) => k.owner === advert.hostId && !listed.has(k.id)).map((k) => k.id)
  return { put, drop }
}

function sameFacts (a: KnownVm, b: KnownVm): boolean {
  return a.name === b.name && a.owner === b.owner && a.ownerHostname === b.ownerHostname && a.epoch === b.epoch && a.state === b.state && a.group === b.group &&
    a.resources.vcpus === b.resources.vcpus && a.resources.memoryBytes === b.resources.memoryBytes && a.resources.diskBytes === b.resources.diskBytes
}

/** How this host sees a VM's owner. */
export interface OwnerFacts {
  /** alive, suspect, dead; undefined: not in the view any more (removed long after it died). */
  liveness: string | undefined
  /** Since when (this host's clock) it has that liveness. */
  sinceMs: number
  /** Whether it answered this listing (undefined: not asked). */
  answered: boolean | undefined
}

export interface UnknownVm {
  vm: KnownVm
  /** dead, gone, suspect or unreachable. */
  ownerLiveness: string
  sinceMs: number
}

/**
 * The VMs to list as unknown: known from gossip, not listed by any host that answered, and whose
 * owner is dead, gone, or did not answer. A VM its live owner answered without is stale (the
 * owner deleted it; its next advert drops the record); this host's own are in its own list. Pure.
 */
export function unknownVms (known: readonly KnownVm[], listed: ReadonlySet<string>, owner: (hostId: string) => OwnerFacts, selfId: string, tombstoned: (id: string) => boolean): UnknownVm[] {
  const out: UnknownVm[] = []
  for (const vm of known) {
    if (listed.has(vm.id) || vm.owner === selfId || tombstoned(vm.id)) continue
    const o = owner(vm.owner)
    if (o.liveness === undefined) out.push({ vm, ownerLiveness: 'gone', sinceMs: vm.lastHeardAt })
    else if (o.liveness === 'dead') out.push({ vm, ownerLiveness: 'dead', sinceMs: o.sinceMs })
    else if (o.answered !== true) out.push({ vm, ownerLiveness: o.liveness === 'suspect' ? 'suspect' : 'unreachable', sinceMs: o.liveness === 'suspect' ? o.sinceMs : 0 })
  }
  return out.sort((a, b) => compareText(a.vm.name, b.vm.name))
}

/**
 * Tombstones to keep: the union by VM id (earliest deletion, highest epoch), without the expired,
 * the newest MAX_TOMBSTONES. Pure: what a host stores after hearing another's list.
 */
export function mergeTombstones (mine: readonly VmTombstone[], theirs: readonly VmTombstone[], now: number, ttlMs = TOMBSTONE_TTL_MS, max = MAX_TOMBSTONES): VmTombstone[] {
  const byId = new Map<string, VmTombstone>()
  for (const t of [...mine, ...theirs]) {
    if (t.vmId === '' || now - t.deletedAt > ttlMs) continue
    const old = byId.get(t.vmId)
    byId.set(t.vmId, old === undefined ? { ...t } : { ...old, deletedAt: Math.min(old.deletedAt, t.deletedAt), epoch: Math.max(old.epoch, t.epoch) })
  }
  return [...byId.values()].sort((a, b) => b.deletedAt - a.deletedAt || compareText(a.vmId, b.vmId)).slice(0, max)
}

/** Whether a tombstone condemns this host's copy of a VM: the same VM, at an epoch not newer than the one deleted. */
export function condemns (t: VmTombstone, vm: { id: string, epoch: number }): boolean {
  return t.vmId === vm.id && vm.epoch <= t.epoch
}
