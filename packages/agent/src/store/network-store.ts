import { pb } from '@meshvirt/proto'
import { networkFromWire, networkToWire, type NetworkRecord } from '../network/network-record.js'
import { RecordTable } from './record-table.js'
import type { StateStore } from './state-store.js'

/** The `networks` table: one record (or tombstone) per name. */
export class NetworkStore extends RecordTable<NetworkRecord> {
  constructor (store: StateStore) {
    super(store, 'networks', { encode: (n) => pb.Network.encode(networkToWire(n)).finish(), decode: (b) => networkFromWire(pb.Network.decode(b)) })
  }
}
