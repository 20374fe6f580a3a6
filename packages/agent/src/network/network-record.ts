import type { NetworkRecord } from '@meshvirt/mesh'
import type { NetworkConfig } from '@meshvirt/network'
import type { meshvirt } from '@meshvirt/proto'

export type { NetworkRecord }

/** Tombstones of deleted networks are gossiped this long, then forgotten. */
export const NETWORK_TOMBSTONE_TTL_MS = 7 * 24 * 3600_000

export function isLive (n: NetworkRecord): boolean {
  return n.deletedAtMs === 0
}

/**
 * Of two records of one name, the one every host keeps, whatever order it heard them in:
 * - the same network (same id): its deletion wins;
 * - two live networks (two creations that raced across a partition, each granted by authorities
 *   that could not see the other): the first created wins (then the smaller id), and the loser's
 *   hosts rebuild the network as the winner defines it;
 * - a live network and another's tombstone: the live one if it was created after that deletion
 *   (the name was reused), the tombstone otherwise;
 * - two tombstones: the later deletion.
 */
export function preferred (a: NetworkRecord, b: NetworkRecord): NetworkRecord {
  if (a.id === b.id) return a.deletedAtMs >= b.deletedAtMs ? a : b
  const aLive = isLive(a)
  const bLive = isLive(b)
  if (aLive && bLive) return a.createdAtMs < b.createdAtMs || (a.createdAtMs === b.createdAtMs && a.id < b.id) ? a : b
  if (!aLive && !bLive) return a.deletedAtMs > b.deletedAtMs || (a.deletedAtMs === b.deletedAtMs && a.id < b.id) ? a : b
  const [live, dead] = aLive ? [a, b] : [b, a]
  return live.createdAtMs > dead.deletedAtMs ? live : dead
}

export function sameRecord (a: NetworkRecord, b: NetworkRecord): boolean {
  return a.id === b.id && a.deletedAtMs === b.deletedAtMs
}

/** What a host builds for the network (packages/network). */
export function networkConfig (n: NetworkRecord): NetworkConfig {
  return { name: n.name, vni: n.vni, subnet: n.subnet, gateway: n.gateway, mtu: n.mtu, nat: n.nat, dhcp: n.dhcp }
}

export function networkToWire (n: NetworkRecord): meshvirt.v1.INetwork {
  return { ...n }
}

export function networkFromWire (w: meshvirt.v1.INetwork): NetworkRecord {
  return {
    name: w.name ?? '',
    id: w.id ?? '',
    vni: w.vni ?? 0,
    subnet: w.subnet ?? '',
    gateway: w.gateway ?? '',
    mtu: w.mtu ?? 0,
    nat: w.nat === true,
    dhcp: w.dhcp === true,
    createdAtMs: Number(w.createdAtMs ?? 0),
    deletedAtMs: Number(w.deletedAtMs ?? 0)
  }
}
