import type { meshvirt } from '@meshvirt/proto'
import type { PersistedLease } from '../lease/types.js'
import type { StateStore } from './state-store.js'

/** Entries of lease history kept per VM. */
export const LEASE_HISTORY_KEPT = 20

/**
 * The lease table of the state store (schema v4): written with a full fsync before an answer leaves;
 * and the lease history per VM (schema v5), which `vm show` reads and a restart keeps.
 */
export class LeaseRecords {
  constructor (private readonly store: StateStore, private readonly clock: () => number = Date.now) {}

  load (): PersistedLease[] {
    return (this.store.prepare('SELECT state FROM leases ORDER BY vm_id').all() as Array<{ state: string }>).map((r) => JSON.parse(r.state) as PersistedLease)
  }

  save (state: PersistedLease): void {
    this.store.durable(() => {
      this.store.prepare('INSERT INTO leases (vm_id, state, updated_at) VALUES (?, ?, ?) ON CONFLICT(vm_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at')
        .run(state.vmId, JSON.stringify(state), this.clock())
    })
  }

  delete (vmId: string): void {
    this.store.prepare('DELETE FROM leases WHERE vm_id = ?').run(vmId)
  }

  /** Appends one entry, keeping the newest `keep` of the VM (a history, not a safety record: no fsync of its own). */
  appendHistory (vmId: string, entry: meshvirt.v1.ILeaseHistoryEntry, keep = LEASE_HISTORY_KEPT): void {
    this.store.transaction(() => {
      this.store.prepare('INSERT INTO lease_history (vm_id, at_ms, type, epoch, detail, host_id) VALUES (?, ?, ?, ?, ?, ?)')
        .run(vmId, Number(entry.atMs ?? 0), entry.type ?? '', Number(entry.epoch ?? 0), entry.detail ?? '', entry.hostId ?? '')
      this.store.prepare('DELETE FROM lease_history WHERE vm_id = ? AND id NOT IN (SELECT id FROM lease_history WHERE vm_id = ? ORDER BY id DESC LIMIT ?)').run(vmId, vmId, keep)
    })
  }

  /** The VM's history here, oldest first. */
  history (vmId: string): meshvirt.v1.ILeaseHistoryEntry[] {
    const rows = this.store.prepare('SELECT at_ms, type, epoch, detail, host_id FROM lease_history WHERE vm_id = ? ORDER BY id').all(vmId) as Array<{ at_ms: number, type: string, epoch: number, detail: string, host_id: string }>
    return rows.map((r) => ({ type: r.type, atMs: r.at_ms, epoch: r.epoch, detail: r.detail, hostId: r.host_id }))
  }

  forgetHistory (vmId: string): void {
    this.store.prepare('DELETE FROM lease_history WHERE vm_id = ?').run(vmId)
  }
}
