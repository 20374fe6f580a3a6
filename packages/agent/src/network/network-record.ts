import type { NetworkRecord } from '@meshvirt/mesh'
import type { NetworkConfig } from '@meshvirt/network'
import type { meshvirt } from '@meshvirt/proto'
import { isLive, preferredOfTwo } from '../util/cluster-book.js'

export type { NetworkRecord }

/** Tombstones of deleted networks are gossiped this long, then forgotten. */
export const NETWORK_TOMBSTONE_TTL_MS = 7 * 24 * 3600_000

export { isLive }

/**
 * Of two records of one name, the one every host keeps, whatever order it heard them in: the same
 * network (same id): its deletion wins; two networks: `preferredOfTwo` (the first created, unless
 * deleted before the other was created) — the loser's hosts rebuild the network as the winner defines it.
 */
export function preferred (a: NetworkRecord, b: NetworkRecord): NetworkRecord {
  if (a.id === b.id) return a.deletedAtMs >= b.deletedAtMs ? a : b
  return preferredOfTwo(a, b)
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
