import type { VmGroupRecord } from '@meshvirt/mesh'
import { pb, type meshvirt } from '@meshvirt/proto'
import { isLive, preferredOfTwo } from '../util/cluster-book.js'

export type { VmGroupRecord }

/** A deleted group's tombstone is gossiped this long after its deletion, then forgotten. */
export const GROUP_TOMBSTONE_TTL_MS = 24 * 3600_000

/**
 * Of two records of one name, the one every host keeps, whatever order it heard them in:
 * - the same group (same id): its deletion wins; else the higher revision (a scale), then the later
 *   change, then the larger host id — two scales given at once to two hosts end as one of them;
 * - two groups (two creations that raced across a partition, or a name reused): `preferredOfTwo`;
 *   a losing group's members share the winner's names, so the winner's owner counts them as its own.
 */
export function preferredGroup (a: VmGroupRecord, b: VmGroupRecord): VmGroupRecord {
  if (a.id === b.id) {
    if (!isLive(a) || !isLive(b)) return a.deletedAtMs >= b.deletedAtMs ? a : b
    if (a.revision !== b.revision) return a.revision > b.revision ? a : b
    if (a.updatedAtMs !== b.updatedAtMs) return a.updatedAtMs > b.updatedAtMs ? a : b
    return a.updatedBy >= b.updatedBy ? a : b
  }
  return preferredOfTwo(a, b)
}

export function sameGroup (a: VmGroupRecord, b: VmGroupRecord): boolean {
  return a.id === b.id && a.revision === b.revision && a.updatedAtMs === b.updatedAtMs && a.updatedBy === b.updatedBy && a.deletedAtMs === b.deletedAtMs
}

/** The members' spec (decoded from the record; name empty). */
export function templateOf (g: VmGroupRecord): meshvirt.v1.VmSpec {
  return pb.VmSpec.decode(g.template)
}

/** How many members the group should have now: none once deleted. */
export function desiredCount (g: VmGroupRecord): number {
  return isLive(g) ? g.count : 0
}

export function groupToWire (g: VmGroupRecord): meshvirt.v1.IVmGroup {
  return { ...g }
}

export function groupFromWire (w: meshvirt.v1.IVmGroup): VmGroupRecord {
  return {
    name: w.name ?? '',
    id: w.id ?? '',
    count: w.count ?? 0,
    template: w.template ?? new Uint8Array(),
    revision: Number(w.revision ?? 0),
    updatedAtMs: Number(w.updatedAtMs ?? 0),
    updatedBy: w.updatedBy ?? '',
    createdAtMs: Number(w.createdAtMs ?? 0),
    deletedAtMs: Number(w.deletedAtMs ?? 0)
  }
}
