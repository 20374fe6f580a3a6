import { pb } from '@meshvirt/proto'
import { networkFromWire, networkToWire, type NetworkRecord } from '../network/network-record.js'
import type { StateStore } from './state-store.js'

/** The `networks` table: one record (or tombstone) per name; plain reads and writes, no policy. */
export class NetworkStore {
  constructor (private readonly store: StateStore) {}

  list (): NetworkRecord[] {
    const rows = this.store.prepare('SELECT record FROM networks ORDER BY name').all() as Array<{ record: Uint8Array }>
    return rows.map((r) => networkFromWire(pb.Network.decode(r.record)))
  }

  /** Written durably: a network the operator was told exists survives a power cut. */
  put (n: NetworkRecord): void {
    this.store.durable(() => {
      this.store.prepare('INSERT INTO networks (name, record) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET record = excluded.record')
        .run(n.name, pb.Network.encode(networkToWire(n)).finish())
    })
  }

  delete (name: string): void {
    this.store.prepare('DELETE FROM networks WHERE name = ?').run(name)
  }
}
