import { decodeVmSpec, encodeVmSpec, type VmSpec } from '../vm/vm-spec-codec.js'
import type { StateStore } from './state-store.js'

/** Owner side: one holder of a replica of a VM this host owns, and the point it holds. */
export interface HolderRow {
  vmId: string
  holder: string
  /** The point held (0/0: nothing complete yet). */
  epoch: number
  seq: number
  takenAt: number
  appliedAt: number
  sentBytes: number
  addedAt: number
  lastError: string | null
}

/** Holder side: a replica this host keeps for another host's VM. */
export interface HeldReplicaRow {
  vmId: string
  name: string
  owner: string
  /** The owner's epoch as last told (HoldReplica). */
  epoch: number
  /** What a promotion starts (the table keeps the wire's bytes). */
  spec: VmSpec
  /** The VM's replica group as the owner last told it (this host included). */
  holders: string[]
  diskBytes: number
  createdAt: number
  updatedAt: number
}

interface RawHolder {
  vm_id: string, holder: string, epoch: number, seq: number, taken_at: number, applied_at: number, sent_bytes: number, added_at: number, last_error: string | null
}
interface RawHeld {
  vm_id: string, name: string, owner: string, epoch: number, spec: Buffer, holders: string, disk_bytes: number, created_at: number, updated_at: number
}

/** The two replica tables of the state store (schema v3): who holds our VMs' replicas, what we hold. */
export class ReplicaRecords {
  constructor (private readonly store: StateStore) {}

  holders (vmId: string): HolderRow[] {
    return (this.store.prepare('SELECT * FROM replica_holders WHERE vm_id = ? ORDER BY added_at, holder').all(vmId) as RawHolder[]).map(toHolder)
  }

  addHolder (vmId: string, holder: string, now: number): void {
    this.store.prepare('INSERT OR IGNORE INTO replica_holders (vm_id, holder, added_at) VALUES (?, ?, ?)').run(vmId, holder, now)
  }

  updateHolder (vmId: string, holder: string, patch: Partial<Pick<HolderRow, 'epoch' | 'seq' | 'takenAt' | 'appliedAt' | 'lastError'>> & { addSentBytes?: number }): void {
    const sets: string[] = []
    const params: Record<string, unknown> = { vm: vmId, holder }
    if (patch.epoch !== undefined) { sets.push('epoch = @epoch'); params.epoch = patch.epoch }
    if (patch.seq !== undefined) { sets.push('seq = @seq'); params.seq = patch.seq }
    if (patch.takenAt !== undefined) { sets.push('taken_at = @taken_at'); params.taken_at = patch.takenAt }
    if (patch.appliedAt !== undefined) { sets.push('applied_at = @applied_at'); params.applied_at = patch.appliedAt }
    if (patch.lastError !== undefined) { sets.push('last_error = @last_error'); params.last_error = patch.lastError }
    if (patch.addSentBytes !== undefined) { sets.push('sent_bytes = sent_bytes + @sent'); params.sent = patch.addSentBytes }
    if (sets.length === 0) return
    this.store.prepare(`UPDATE replica_holders SET ${sets.join(', ')} WHERE vm_id = @vm AND holder = @holder`).run(params)
  }

  removeHolder (vmId: string, holder: string): void {
    this.store.prepare('DELETE FROM replica_holders WHERE vm_id = ? AND holder = ?').run(vmId, holder)
  }

  removeHolders (vmId: string): void {
    this.store.prepare('DELETE FROM replica_holders WHERE vm_id = ?').run(vmId)
  }

  held (vmId: string): HeldReplicaRow | undefined {
    const raw = this.store.prepare('SELECT * FROM held_replicas WHERE vm_id = ?').get(vmId) as RawHeld | undefined
    return raw === undefined ? undefined : toHeld(raw)
  }

  listHeld (): HeldReplicaRow[] {
    return (this.store.prepare('SELECT * FROM held_replicas ORDER BY vm_id').all() as RawHeld[]).map(toHeld)
  }

  putHeld (r: HeldReplicaRow): void {
    this.store.prepare(`INSERT INTO held_replicas (vm_id, name, owner, epoch, spec, holders, disk_bytes, created_at, updated_at)
      VALUES (@vm_id, @name, @owner, @epoch, @spec, @holders, @disk_bytes, @created_at, @updated_at)
      ON CONFLICT(vm_id) DO UPDATE SET name = excluded.name, owner = excluded.owner, epoch = excluded.epoch, spec = excluded.spec,
      holders = excluded.holders, disk_bytes = excluded.disk_bytes, updated_at = excluded.updated_at`)
      .run({ vm_id: r.vmId, name: r.name, owner: r.owner, epoch: r.epoch, spec: Buffer.from(encodeVmSpec(r.spec)), holders: JSON.stringify(r.holders), disk_bytes: r.diskBytes, created_at: r.createdAt, updated_at: r.updatedAt })
  }

  deleteHeld (vmId: string): boolean {
    return this.store.prepare('DELETE FROM held_replicas WHERE vm_id = ?').run(vmId).changes > 0
  }
}

function toHolder (r: RawHolder): HolderRow {
  return { vmId: r.vm_id, holder: r.holder, epoch: r.epoch, seq: r.seq, takenAt: r.taken_at, appliedAt: r.applied_at, sentBytes: r.sent_bytes, addedAt: r.added_at, lastError: r.last_error }
}

function toHeld (r: RawHeld): HeldReplicaRow {
  return {
    vmId: r.vm_id, name: r.name, owner: r.owner, epoch: r.epoch, spec: decodeVmSpec(r.spec), holders: JSON.parse(r.holders) as string[],
    diskBytes: r.disk_bytes, createdAt: r.created_at, updatedAt: r.updated_at
  }
}
