import type { StateStore } from './state-store.js'

/** The tables of cluster objects kept by name (schema.ts): one encoded record, or tombstone, per name. */
export type RecordTableName = 'networks' | 'vm_groups'

/** A table of cluster objects (networks, VM groups): plain reads and writes of encoded records, no policy. */
export class RecordTable<T extends { name: string }> {
  constructor (
    private readonly store: StateStore,
    private readonly table: RecordTableName,
    private readonly codec: { encode: (record: T) => Uint8Array, decode: (bytes: Uint8Array) => T }
  ) {}

  list (): T[] {
    const rows = this.store.prepare(`SELECT record FROM ${this.table} ORDER BY name`).all() as Array<{ record: Uint8Array }>
    return rows.map((r) => this.codec.decode(r.record))
  }

  /** Written durably: an object the operator was told exists survives a power cut. */
  put (record: T): void {
    this.store.durable(() => {
      this.store.prepare(`INSERT INTO ${this.table} (name, record) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET record = excluded.record`)
        .run(record.name, this.codec.encode(record))
    })
  }

  delete (name: string): void {
    this.store.prepare(`DELETE FROM ${this.table} WHERE name = ?`).run(name)
  }
}
