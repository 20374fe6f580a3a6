import { compareText } from './compare-text.js'
/** A cluster object every host keeps by name (a network, a VM group): a tombstone once `deletedAtMs` is set. */
export interface ClusterObject {
  name: string
  id: string
  createdAtMs: number
  /** 0 while the object exists. */
  deletedAtMs: number
}

/** Where a book keeps its records (a table of the state store). */
export interface BookStore<T> {
  list: () => T[]
  put: (record: T) => void
  delete: (name: string) => void
}

/** The merge rules of one kind of object. */
export interface BookRules<T> {
  /** Of two records of one name, the one every host keeps, whatever order it heard them in. */
  preferred: (a: T, b: T) => T
  /** Whether two records say the same (merging one over the other changes nothing). */
  same: (a: T, b: T) => boolean
  /** Tombstones are gossiped this long after the deletion, then forgotten. */
  tombstoneTtlMs: number
}

export function isLive (o: ClusterObject): boolean {
  return o.deletedAtMs === 0
}

/**
 * Of two records of one name that are *different* objects (ids), the one every host keeps:
 * - two live ones (two creations that raced across a partition, each granted by deciders that could
 *   not see the other): the first created wins (then the smaller id);
 * - a live one and another's tombstone: the live one if it was created after that deletion (the name
 *   was reused), the tombstone otherwise;
 * - two tombstones: the later deletion.
 */
export function preferredOfTwo<T extends ClusterObject> (a: T, b: T): T {
  const aLive = isLive(a)
  const bLive = isLive(b)
  if (aLive && bLive) return a.createdAtMs < b.createdAtMs || (a.createdAtMs === b.createdAtMs && a.id < b.id) ? a : b
  if (!aLive && !bLive) return a.deletedAtMs > b.deletedAtMs || (a.deletedAtMs === b.deletedAtMs && a.id < b.id) ? a : b
  const [live, dead] = aLive ? [a, b] : [b, a]
  return live.createdAtMs > dead.deletedAtMs ? live : dead
}

/**
 * Cluster objects as this host knows them: kept in its store, merged from every advert it hears
 * (the rules' `preferred` decides between two records of a name, so every host ends with the same
 * set whatever order it heard them in), and gossiped in its own advert.
 */
export class ClusterBook<T extends ClusterObject> {
  private readonly byName = new Map<string, T>()

  constructor (private readonly store: BookStore<T>, private readonly rules: BookRules<T>, private readonly onChange: (changed: T[]) => void, private readonly clock: () => number = Date.now) {
    for (const n of store.list()) this.byName.set(n.name, n)
  }

  /** A live object by name. */
  get (name: string): T | undefined {
    const n = this.byName.get(name)
    return n !== undefined && isLive(n) ? n : undefined
  }

  /** The record of a name, tombstone or not. */
  record (name: string): T | undefined {
    return this.byName.get(name)
  }

  live (): T[] {
    return [...this.byName.values()].filter(isLive).sort((a, b) => compareText(a.name, b.name))
  }

  /** Everything gossiped: live objects and unexpired tombstones. */
  all (): T[] {
    return [...this.byName.values()]
  }

  /** Merges records heard from a peer (or made here); returns those that changed what this host keeps. */
  merge (records: readonly T[]): T[] {
    const changed: T[] = []
    const expired = this.clock() - this.rules.tombstoneTtlMs
    for (const r of records) {
      if (!isLive(r) && r.deletedAtMs < expired) continue
      const held = this.byName.get(r.name)
      const keep = held === undefined ? r : this.rules.preferred(held, r)
      if (held !== undefined && this.rules.same(keep, held)) continue
      this.byName.set(r.name, keep)
      this.store.put(keep)
      changed.push(keep)
    }
    if (changed.length > 0) this.onChange(changed)
    return changed
  }

  /** Turns the object into a tombstone (gossiped until it expires). */
  tombstone (name: string): T | undefined {
    const n = this.get(name)
    if (n === undefined) return undefined
    const dead = { ...n, deletedAtMs: Math.max(this.clock(), n.createdAtMs + 1) }
    this.merge([dead])
    return dead
  }

  /** Forgets tombstones past their time. */
  prune (): void {
    const expired = this.clock() - this.rules.tombstoneTtlMs
    for (const n of [...this.byName.values()]) {
      if (!isLive(n) && n.deletedAtMs < expired) {
        this.byName.delete(n.name)
        this.store.delete(n.name)
      }
    }
  }
}
