import { compareText } from '../util/compare-text.js'
import type { VmRow } from './state-store.js'

/**
 * The VM rows of a state store, read once (agents list their VMs many times a second: adverts,
 * leases, replication, networks, monitoring). A written VM's row is read again, alone, once its
 * write is committed: reading every row again after every write made a placement storm quadratic
 * (40 VMs a host: ~8 % of the agents' CPU). The store fills it only outside a transaction and
 * drops it when one rolls back, so what a rolled-back transaction wrote never enters it.
 */
export class VmRowCache {
  private rows: Map<string, VmRow> | undefined
  /** The last row in listing order: a new VM after it is appended; one before it, all are read again. */
  private last: VmRow | undefined
  /** VMs written inside the open transaction, read again when it commits. */
  private readonly pending = new Set<string>()

  constructor (private readonly read: { all: () => VmRow[], one: (id: string) => VmRow | undefined }) {}

  /** The rows in listing order (created_at, id), read when missing. Callers must not change them. */
  get (): Map<string, VmRow> {
    if (this.rows === undefined) {
      const all = this.read.all()
      this.rows = new Map(all.map((r) => [r.id, r]))
      this.last = all.at(-1)
    }
    return this.rows
  }

  /** A VM row was written: read again now, or, inside a transaction, when it commits. */
  written (id: string, inTransaction: boolean): void {
    if (this.rows === undefined) return
    if (inTransaction) this.pending.add(id)
    else this.reread(id)
  }

  /** The outermost transaction committed: what it wrote is read again. */
  committed (): void {
    const ids = [...this.pending]
    this.pending.clear()
    for (const id of ids) this.reread(id)
  }

  /** The outermost transaction rolled back: nothing cached is trusted. */
  forget (): void {
    this.rows = undefined
    this.last = undefined
    this.pending.clear()
  }

  private reread (id: string): void {
    const rows = this.rows
    if (rows === undefined) return
    const row = this.read.one(id)
    if (row === undefined) {
      rows.delete(id)
      if (this.last?.id === id) this.forget()
    } else if (rows.has(id)) {
      rows.set(id, row) // the listing keys never change: it keeps its place
      if (this.last?.id === id) this.last = row
    } else if (this.last === undefined || listedAfter(row, this.last)) {
      rows.set(id, row)
      this.last = row
    } else {
      this.forget()
    }
  }
}

/** Whether `a` comes after `b` in the listing order (created_at, then id compared as SQLite compares text). */
function listedAfter (a: VmRow, b: VmRow): boolean {
  return a.createdAt > b.createdAt || (a.createdAt === b.createdAt && compareText(a.id, b.id) > 0)
}
