import type { PersistedLease } from '../lease/types.js'
import type { StateStore } from './state-store.js'

/** The lease table of the state store (schema v4): written with a full fsync before an answer leaves. */
export class LeaseRecords {
  constructor (private readonly store: StateStore, private readonly clock: () => number = Date.now) {}

  load (): PersistedLease[] {
    return (this.store.db.prepare('SELECT state FROM leases ORDER BY vm_id').all() as Array<{ state: string }>).map((r) => JSON.parse(r.state) as PersistedLease)
  }

  save (state: PersistedLease): void {
    this.store.durable(() => {
      this.store.db.prepare('INSERT INTO leases (vm_id, state, updated_at) VALUES (?, ?, ?) ON CONFLICT(vm_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at')
        .run(state.vmId, JSON.stringify(state), this.clock())
    })
  }

  delete (vmId: string): void {
    this.store.db.prepare('DELETE FROM leases WHERE vm_id = ?').run(vmId)
  }
}
