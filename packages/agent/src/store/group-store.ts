import { pb } from '@meshvirt/proto'
import { groupFromWire, groupToWire, type VmGroupRecord } from '../vm-group/group-record.js'
import { RecordTable } from './record-table.js'
import type { StateStore } from './state-store.js'

/** The `vm_groups` table: one record (or tombstone) per name. */
export class GroupStore extends RecordTable<VmGroupRecord> {
  constructor (store: StateStore) {
    super(store, 'vm_groups', { encode: (g) => pb.VmGroup.encode(groupToWire(g)).finish(), decode: (b) => groupFromWire(pb.VmGroup.decode(b)) })
  }
}
