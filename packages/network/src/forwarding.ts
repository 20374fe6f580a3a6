import { FLOOD_MAC } from './constants.js'
import type { NetworkPeers } from './types.js'

/**
 * The VXLAN device's tables as plain data: forwarding (FDB) entries, MAC → remote underlay address,
 * with the all-zero MAC meaning "flood broadcast to this host"; and neighbour entries, IP → MAC,
 * from which the device answers ARP locally (`proxy`). Parsers read iproute2's `-j` output.
 */

/** A VXLAN forwarding entry: `bridge fdb … dev VX dst <dst>`. */
export interface FdbEntry {
  mac: string
  dst: string
  /**
   * Flood entries are permanent; unicast ones dynamic, so that learning can move them. A unicast
   * entry found permanent (made before learning was on) is replaced by a dynamic one.
   */
  permanent: boolean
}

/** A neighbour entry on the VXLAN device: `ip neigh … <ip> lladdr <mac>`. */
export interface NeighEntry {
  ip: string
  mac: string
  /** Only permanent entries are ours; the kernel's own (reachable, stale, failed) are replaced. */
  permanent: boolean
}

/** Flood entries are one per remote host (key: MAC and host); a unicast MAC lives on one host (key: MAC). */
export function fdbKey (e: FdbEntry): string {
  return e.mac === FLOOD_MAC ? `${e.mac} ${e.dst}` : e.mac
}

export function sameFdb (a: FdbEntry, b: FdbEntry): boolean {
  return a.dst === b.dst && a.permanent === b.permanent
}

export function neighKey (e: NeighEntry): string {
  return e.ip
}

export function sameNeigh (a: NeighEntry, b: NeighEntry): boolean {
  return a.mac === b.mac && a.permanent === b.permanent
}

/** The entries a network's peers call for: a flood entry per host in floodTo, a unicast entry per remote NIC. */
export function desiredFdb (peers: NetworkPeers): FdbEntry[] {
  const flood = [...new Set(peers.floodTo)].sort().map((dst) => ({ mac: FLOOD_MAC, dst, permanent: true }))
  return [...flood, ...peers.nics.map((n) => ({ mac: n.mac.toLowerCase(), dst: n.underlay, permanent: false }))]
}

export function desiredNeigh (peers: NetworkPeers): NeighEntry[] {
  return peers.nics.map((n) => ({ ip: n.ip, mac: n.mac.toLowerCase(), permanent: true }))
}

function parseJsonArray (text: string, what: string): unknown[] {
  const trimmed = text.trim()
  if (trimmed === '') return []
  const parsed: unknown = JSON.parse(trimmed)
  if (!Array.isArray(parsed)) throw new Error(`${what}: expected a JSON array`)
  return parsed
}

/**
 * `bridge -j fdb show dev VX` → the device's own (`self`) entries with a remote `dst`. The bridge's
 * entries (`master`: its learned and local MACs) are the bridge's business and are skipped.
 */
export function parseFdb (text: string): FdbEntry[] {
  const out: FdbEntry[] = []
  for (const raw of parseJsonArray(text, 'bridge fdb show')) {
    const e = raw as { mac?: string, dst?: string, master?: string, state?: string }
    if (typeof e.mac !== 'string' || typeof e.dst !== 'string' || e.master !== undefined) continue
    out.push({ mac: e.mac.toLowerCase(), dst: e.dst, permanent: e.state === 'permanent' })
  }
  return out
}

/** `ip -j neigh show dev VX` → entries with a link-layer address (incomplete and failed ones have none). */
export function parseNeigh (text: string): NeighEntry[] {
  const out: NeighEntry[] = []
  for (const raw of parseJsonArray(text, 'ip neigh show')) {
    const e = raw as { dst?: string, lladdr?: string, state?: string[] }
    if (typeof e.dst !== 'string' || typeof e.lladdr !== 'string' || e.dst.includes(':')) continue
    out.push({ ip: e.dst, mac: e.lladdr.toLowerCase(), permanent: (e.state ?? []).includes('PERMANENT') })
  }
  return out
}
