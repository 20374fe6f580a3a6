import type { NetworkStore } from '../store/network-store.js'
import { isLive, NETWORK_TOMBSTONE_TTL_MS, preferred, sameRecord, type NetworkRecord } from './network-record.js'

/**
 * The cluster's networks as this host knows them: kept in its store, merged from every advert it
 * hears (network-record.ts's `preferred` decides between two records of a name, so every host ends
 * with the same set whatever order it heard them in), and gossiped in its own advert.
 */
export class NetworkBook {
  private readonly byName = new Map<string, NetworkRecord>()

  constructor (private readonly store: NetworkStore, private readonly onChange: (changed: NetworkRecord[]) => void, private readonly clock: () => number = Date.now) {
    for (const n of store.list()) this.byName.set(n.name, n)
  }

  /** A live network by name. */
  get (name: string): NetworkRecord | undefined {
    const n = this.byName.get(name)
    return n !== undefined && isLive(n) ? n : undefined
  }

  live (): NetworkRecord[] {
    return [...this.byName.values()].filter(isLive).sort((a, b) => a.name.localeCompare(b.name))
  }

  /** Everything gossiped: live networks and unexpired tombstones. */
  all (): NetworkRecord[] {
    return [...this.byName.values()]
  }

  /** Merges records heard from a peer (or made here); returns those that changed what this host keeps. */
  merge (records: readonly NetworkRecord[]): NetworkRecord[] {
    const changed: NetworkRecord[] = []
    const expired = this.clock() - NETWORK_TOMBSTONE_TTL_MS
    for (const r of records) {
      if (!isLive(r) && r.deletedAtMs < expired) continue
      const held = this.byName.get(r.name)
      const keep = held === undefined ? r : preferred(held, r)
      if (held !== undefined && sameRecord(keep, held)) continue
      this.byName.set(r.name, keep)
      this.store.put(keep)
      changed.push(keep)
    }
    if (changed.length > 0) this.onChange(changed)
    return changed
  }

  /** Turns the network into a tombstone (gossiped until it expires). */
  tombstone (name: string): NetworkRecord | undefined {
    const n = this.get(name)
    if (n === undefined) return undefined
    const dead = { ...n, deletedAtMs: Math.max(this.clock(), n.createdAtMs + 1) }
    this.merge([dead])
    return dead
  }

  /** Forgets tombstones past their time. */
  prune (): void {
    const expired = this.clock() - NETWORK_TOMBSTONE_TTL_MS
    for (const n of [...this.byName.values()]) {
      if (!isLive(n) && n.deletedAtMs < expired) {
        this.byName.delete(n.name)
        this.store.delete(n.name)
      }
    }
  }
}
