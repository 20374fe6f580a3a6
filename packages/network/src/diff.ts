/**
 * Desired-vs-actual reconciliation of keyed tables (forwarding and neighbour entries): what to add
 * or replace, and what to remove, so that programming the kernel is a diff and a second run is a no-op.
 */

export interface EntryDiff<T> {
  /** Desired entries missing from the actual table, or present there with other values (to be replaced). */
  add: T[]
  /** Actual entries whose key is not desired, and extra copies of a key (to be deleted). */
  remove: T[]
}

/**
 * Compares `desired` with `actual` by `key`; entries with the same key are the same entry when
 * `same` says so (default: equal keys are enough). Later desired duplicates of a key are ignored.
 */
export function diffEntries<T> (desired: readonly T[], actual: readonly T[], key: (e: T) => string, same: (a: T, b: T) => boolean = () => true): EntryDiff<T> {
  const want = new Map<string, T>()
  for (const e of desired) if (!want.has(key(e))) want.set(key(e), e)
  const have = new Map<string, T>()
  const remove: T[] = []
  for (const e of actual) {
    const k = key(e)
    if (!want.has(k) || have.has(k)) remove.push(e)
    else have.set(k, e)
  }
  const add: T[] = []
  for (const [k, e] of want) {
    const found = have.get(k)
    if (found === undefined || !same(e, found)) add.push(e)
  }
  return { add, remove }
}
