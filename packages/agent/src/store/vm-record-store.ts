import type { StateStore } from './state-store.js'

/** A VM another host owns, as its adverts last described it (schema v6, `known_vms`). */
export interface KnownVm {
  id: string
  name: string
  owner: string
  ownerHostname: string
  epoch: number
  /** As gossiped: running, stopped, crashed … */
  state: string
  group: string
  resources: { vcpus: number, memoryBytes: number, diskBytes: number }
  /** This host's clock when the owner last gossiped it (refreshed at most every KNOWN_REFRESH_MS). */
  lastHeardAt: number
}

/** A VM deleted with --force (schema v6, `vm_tombstones`). */
export interface VmTombstone {
  vmId: string
  name: string
  owner: string
  epoch: number
  deletedAt: number
}

interface RawKnown {
  vm_id: string, name: string, owner: string, owner_hostname: string, epoch: number, state: string, vm_group: string,
  vcpus: number, memory_bytes: number, disk_bytes: number, last_heard_at: number
}

/** The `known_vms` and `vm_tombstones` tables: plain reads and writes, no policy. */
export class VmRecordStore {
  constructor (private readonly store: StateStore) {}

  transactionally (fn: () => void): void {
    this.store.transaction(fn)
  }

  listKnown (): KnownVm[] {
    return (this.store.prepare('SELECT * FROM known_vms ORDER BY name, vm_id').all() as RawKnown[]).map(toKnown)
  }

  putKnown (vm: KnownVm): void {
    this.store.prepare(`INSERT INTO known_vms (vm_id, name, owner, owner_hostname, epoch, state, vm_group, vcpus, memory_bytes, disk_bytes, last_heard_at)
      VALUES (@id, @name, @owner, @ownerHostname, @epoch, @state, @group, @vcpus, @memoryBytes, @diskBytes, @lastHeardAt)
      ON CONFLICT(vm_id) DO UPDATE SET name = excluded.name, owner = excluded.owner, owner_hostname = excluded.owner_hostname, epoch = excluded.epoch,
      state = excluded.state, vm_group = excluded.vm_group, vcpus = excluded.vcpus, memory_bytes = excluded.memory_bytes, disk_bytes = excluded.disk_bytes,
      last_heard_at = excluded.last_heard_at`).run({ ...vm, ...vm.resources })
  }

  deleteKnown (vmId: string): void {
    this.store.prepare('DELETE FROM known_vms WHERE vm_id = ?').run(vmId)
  }

  tombstones (): VmTombstone[] {
    const rows = this.store.prepare('SELECT vm_id, name, owner, epoch, deleted_at FROM vm_tombstones ORDER BY deleted_at DESC, vm_id').all() as Array<{ vm_id: string, name: string, owner: string, epoch: number, deleted_at: number }>
    return rows.map((r) => ({ vmId: r.vm_id, name: r.name, owner: r.owner, epoch: r.epoch, deletedAt: r.deleted_at }))
  }

  /** Records a tombstone (fsynced: a returning owner must find it) and forgets what was known of the VM. */
  putTombstone (t: VmTombstone): void {
    this.store.durable(() => {
      this.store.prepare(`INSERT INTO vm_tombstones (vm_id, name, owner, epoch, deleted_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT(vm_id) DO UPDATE SET deleted_at = MIN(deleted_at, excluded.deleted_at), epoch = MAX(epoch, excluded.epoch)`).run(t.vmId, t.name, t.owner, t.epoch, t.deletedAt)
      this.deleteKnown(t.vmId)
    })
  }

  /** Drops tombstones older than `before`, then all but the newest `keep`. Returns how many went. */
  pruneTombstones (before: number, keep: number): number {
    return this.store.transaction(() => {
      const old = this.store.prepare('DELETE FROM vm_tombstones WHERE deleted_at < ?').run(before).changes
      const over = this.store.prepare('DELETE FROM vm_tombstones WHERE vm_id NOT IN (SELECT vm_id FROM vm_tombstones ORDER BY deleted_at DESC, vm_id LIMIT ?)').run(keep).changes
      return old + over
    })
  }
}

function toKnown (r: RawKnown): KnownVm {
  return {
    id: r.vm_id, name: r.name, owner: r.owner, ownerHostname: r.owner_hostname, epoch: r.epoch, state: r.state, group: r.vm_group,
    resources: { vcpus: r.vcpus, memoryBytes: r.memory_bytes, diskBytes: r.disk_bytes }, lastHeardAt: r.last_heard_at
  }
}
