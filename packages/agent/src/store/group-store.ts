import { pb } from '@meshvirt/proto'
import { groupFromWire, groupToWire, type VmGroupRecord } from '../vm-group/group-record.js'
import type { StateStore } from './state-store.js'

/** The `vm_groups` table: one record (or tombstone) per name; plain reads and writes, no policy. */
export class GroupStore {
  constructor (private readonly store: StateStore) {}

  list (): VmGroupRecord[] {
    const rows = this.store.prepare('SELECT record FROM vm_groups ORDER BY name').all() as Array<{ record: Uint8Array }>
    return rows.map((r) => groupFromWire(pb.VmGroup.decode(r.record)))
  }

  /** Written durably: a group the operator was told exists survives a power cut. */
  put (g: VmGroupRecord): void {
    this.store.durable(() => {
      this.store.prepare('INSERT INTO vm_groups (name, record) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET record = excluded.record')
        .run(g.name, pb.VmGroup.encode(groupToWire(g)).finish())
    })
  }

  delete (name: string): void {
    this.store.prepare('DELETE FROM vm_groups WHERE name = ?').run(name)
  }
}
