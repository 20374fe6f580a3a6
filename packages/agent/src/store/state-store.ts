import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { Resources } from '@meshvirt/placement'
import { decodeVmSpec, encodeVmSpec, type VmSpec } from '../vm/vm-spec-codec.js'
import { MIGRATIONS } from './schema.js'
import { StatementCache } from './statement-cache.js'
import { VmRowCache } from './vm-row-cache.js'

export const STATE_DB = 'state.db'

/**
 * Every run state a VM record can be in — the one list (metrics, wire mapping and legality tables
 * derive from it). `fenced`: stopped by this host because it could not prove its lease (replicated
 * VMs); the lease restarts it or hands it over. `migrating`: source side of a live migration (the
 * guest still runs here). `incoming`: destination side, a paused incoming QEMU, not yet this host's VM.
 */
export const VM_RUN_STATES = ['pending', 'starting', 'running', 'stopping', 'stopped', 'crashed', 'deleting', 'failed', 'fenced', 'migrating', 'incoming'] as const
export type VmRunState = typeof VM_RUN_STATES[number]
export type DesiredState = 'running' | 'stopped' | 'deleted'

/**
 * A VM this host owns, as stored. The spec is decoded once, when the row is read (the table keeps the
 * wire's bytes), and frozen: rows are shared by the cache. `placement` and `lastMigration` stay encoded
 * protobuf, read only to be shown.
 */
export interface VmRow {
  id: string
  name: string
  group: string
  spec: VmSpec
  placement: Uint8Array | null
  owner: string
  epoch: number
  state: VmRunState
  desired: DesiredState
  resources: Resources
  idempotencyKey: string | null
  createdAt: number
  updatedAt: number
  startedAt: number | null
  lastError: string | null
  /** meshvirt.v1.MigrationRecord of the last migration, if any. */
  lastMigration: Uint8Array | null
}

export interface ReservationRow {
  token: string
  requestId: string
  brokerId: string
  resources: Resources
  expiresAt: number
  createdAt: number
  /** The group of the VM it is for ('' = none). */
  group?: string
}

export interface NameClaimRow {
  name: string
  idempotencyKey: string
  vmId: string
  /** The broker that made the claim (its own retry is not another request). */
  brokerId: string
  owner: string
  /** null once bound to a committed VM. */
  expiresAt: number | null
}

interface RawReservation {
  token: string, request_id: string, broker_id: string, vcpus: number, memory_bytes: number, disk_bytes: number, expires_at: number, created_at: number, vm_group: string
}

interface RawVm {
  id: string, name: string, vm_group: string, spec: Buffer, placement: Buffer | null, owner: string, epoch: number, state: string, desired: string,
  vcpus: number, memory_bytes: number, disk_bytes: number, idempotency_key: string | null, created_at: number, updated_at: number,
  started_at: number | null, last_error: string | null, last_migration: Buffer | null
}

/**
 * The host's transactional state (better-sqlite3, WAL). All calls are synchronous: within one
 * agent process two ledger decisions can never interleave.
 *
 * Durability: WAL with synchronous=NORMAL survives a kill -9 of the agent at any point (the
 * WAL is in the OS page cache); only power loss can drop the last transactions. That is fine
 * for reservations, claims and state changes (they expire or are re-derived from QEMU on
 * restart), but not for a VM record a broker was told exists: `durable()` runs those with
 * synchronous=FULL (an fsync per commit, ~ms here, instead of one per ledger decision).
 */
export class StateStore {
  /** Writes go through transaction()/durable() (the VM row cache follows their commits); read it, do not write around them. */
  readonly db: Database.Database
  private readonly statements: StatementCache<Database.Statement>
  /** The VM rows, kept between writes (vm-row-cache.ts). */
  private readonly vmRows = new VmRowCache({
    all: () => this.readVms(),
    one: (id) => {
      const raw = this.prepare('SELECT * FROM vms WHERE id = ?').get(id) as RawVm | undefined
      return raw === undefined ? undefined : toVm(raw)
    }
  })

  constructor (path: string) {
    this.db = new Database(path)
    this.statements = new StatementCache((sql) => this.db.prepare(sql))
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL')
    this.db.pragma('busy_timeout = 5000')
    this.migrate()
  }

  static open (dataDir: string): StateStore {
    return new StateStore(join(dataDir, STATE_DB))
  }

  close (): void {
    this.db.close()
  }

  /** The statement for `sql`, prepared once per store (see StatementCache). */
  prepare (sql: string): Database.Statement {
    return this.statements.get(sql)
  }

  transaction<T> (fn: () => T): T {
    const outermost = !this.db.inTransaction
    let result: T
    try {
      result = this.db.transaction(fn).immediate()
    } catch (err) {
      if (outermost) this.vmRows.forget()
      throw err
    }
    if (outermost) this.vmRows.committed()
    return result
  }

  /** A transaction that reaches the disk before it returns (power-loss safe). */
  durable<T> (fn: () => T): T {
    this.db.pragma('synchronous = FULL')
    try {
      return this.transaction(fn)
    } finally {
      this.db.pragma('synchronous = NORMAL')
    }
  }

  getMeta (key: string): string | undefined {
    return (this.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value
  }

  setMeta (key: string, value: string): void {
    this.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value)
  }

  // --- VMs -------------------------------------------------------------------------------

  insertVm (vm: VmRow): void {
    this.prepare(`INSERT INTO vms (id, name, vm_group, spec, placement, owner, epoch, state, desired, vcpus, memory_bytes, disk_bytes,
      idempotency_key, created_at, updated_at, started_at, last_error, last_migration) VALUES (@id, @name, @vm_group, @spec, @placement, @owner, @epoch, @state,
      @desired, @vcpus, @memory_bytes, @disk_bytes, @idempotency_key, @created_at, @updated_at, @started_at, @last_error, @last_migration)`).run({
      id: vm.id, name: vm.name, vm_group: vm.group, spec: Buffer.from(encodeVmSpec(vm.spec)), placement: vm.placement === null ? null : Buffer.from(vm.placement), owner: vm.owner,
      epoch: vm.epoch, state: vm.state, desired: vm.desired, vcpus: vm.resources.vcpus, memory_bytes: vm.resources.memoryBytes,
      disk_bytes: vm.resources.diskBytes, idempotency_key: vm.idempotencyKey, created_at: vm.createdAt, updated_at: vm.updatedAt,
      started_at: vm.startedAt, last_error: vm.lastError, last_migration: vm.lastMigration === null ? null : Buffer.from(vm.lastMigration)
    })
    this.vmRows.written(vm.id, this.db.inTransaction)
  }

  getVm (id: string): VmRow | undefined {
    const rows = this.cachedVms()
    if (rows !== undefined) {
      const row = rows.get(id)
      return row === undefined ? undefined : copyVm(row)
    }
    const raw = this.prepare('SELECT * FROM vms WHERE id = ?').get(id) as RawVm | undefined
    return raw === undefined ? undefined : toVm(raw)
  }

  findVmByName (name: string): VmRow | undefined {
    const raw = this.prepare('SELECT * FROM vms WHERE name = ? ORDER BY created_at LIMIT 1').get(name) as RawVm | undefined
    return raw === undefined ? undefined : toVm(raw)
  }

  findVmByIdempotencyKey (key: string): VmRow | undefined {
    const raw = this.prepare('SELECT * FROM vms WHERE idempotency_key = ?').get(key) as RawVm | undefined
    return raw === undefined ? undefined : toVm(raw)
  }

  listVms (): VmRow[] {
    const rows = this.cachedVms()
    if (rows !== undefined) return [...rows.values()].map(copyVm)
    return this.readVms()
  }

  private readVms (): VmRow[] {
    return (this.prepare('SELECT * FROM vms ORDER BY created_at, id').all() as RawVm[]).map(toVm)
  }

  /** The cached rows in listing order, loaded when missing; undefined inside a transaction. */
  private cachedVms (): Map<string, VmRow> | undefined {
    return this.db.inTransaction ? undefined : this.vmRows.get()
  }

  updateVm (id: string, patch: Partial<Pick<VmRow, 'state' | 'desired' | 'startedAt' | 'lastError' | 'epoch' | 'lastMigration' | 'spec' | 'resources'>>, now: number): void {
    const sets: string[] = ['updated_at = @now']
    const params: Record<string, unknown> = { id, now }
    if (patch.state !== undefined) { sets.push('state = @state'); params.state = patch.state }
    if (patch.desired !== undefined) { sets.push('desired = @desired'); params.desired = patch.desired }
    if (patch.startedAt !== undefined) { sets.push('started_at = @started_at'); params.started_at = patch.startedAt }
    if (patch.lastError !== undefined) { sets.push('last_error = @last_error'); params.last_error = patch.lastError }
    if (patch.epoch !== undefined) { sets.push('epoch = @epoch'); params.epoch = patch.epoch }
    if (patch.lastMigration !== undefined) { sets.push('last_migration = @last_migration'); params.last_migration = patch.lastMigration === null ? null : Buffer.from(patch.lastMigration) }
    if (patch.spec !== undefined) { sets.push('spec = @spec'); params.spec = Buffer.from(encodeVmSpec(patch.spec)) }
    if (patch.resources !== undefined) {
      sets.push('vcpus = @vcpus', 'memory_bytes = @memory_bytes', 'disk_bytes = @disk_bytes')
      Object.assign(params, { vcpus: patch.resources.vcpus, memory_bytes: patch.resources.memoryBytes, disk_bytes: patch.resources.diskBytes })
    }
    this.prepare(`UPDATE vms SET ${sets.join(', ')} WHERE id = @id`).run(params)
    this.vmRows.written(id, this.db.inTransaction)
  }

  deleteVm (id: string): void {
    this.prepare('DELETE FROM vms WHERE id = ?').run(id)
    this.vmRows.written(id, this.db.inTransaction)
  }

  /** What the VMs recorded here hold, and the disks of the replicas kept here (the ledger's `allocated`). */
  allocated (): Resources {
    const vms = this.sum('vms')
    const replicas = this.prepare('SELECT COALESCE(SUM(disk_bytes),0) d FROM held_replicas').get() as { d: number }
    return { ...vms, diskBytes: vms.diskBytes + replicas.d }
  }

  // --- reservations ----------------------------------------------------------------------

  insertReservation (r: ReservationRow): void {
    this.prepare(`INSERT INTO reservations (token, request_id, broker_id, vcpus, memory_bytes, disk_bytes, expires_at, created_at, vm_group)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(r.token, r.requestId, r.brokerId, r.resources.vcpus, r.resources.memoryBytes, r.resources.diskBytes, r.expiresAt, r.createdAt, r.group ?? '')
  }

  getReservation (token: string): ReservationRow | undefined {
    const raw = this.prepare('SELECT * FROM reservations WHERE token = ?').get(token) as RawReservation | undefined
    return raw === undefined ? undefined : toReservation(raw)
  }

  findReservationByRequest (requestId: string): ReservationRow | undefined {
    const raw = this.prepare('SELECT * FROM reservations WHERE request_id = ?').get(requestId) as RawReservation | undefined
    return raw === undefined ? undefined : toReservation(raw)
  }

  deleteReservation (token: string): boolean {
    return this.prepare('DELETE FROM reservations WHERE token = ?').run(token).changes > 0
  }

  /** Drops reservations whose TTL has passed; returns how many. */
  expireReservations (now: number): number {
    return this.prepare('DELETE FROM reservations WHERE expires_at <= ?').run(now).changes
  }

  reserved (): Resources {
    return this.sum('reservations')
  }

  /** Guests this host runs or has promised: VMs and reservations with memory (replicas hold disk only). */
  guestCount (): number {
    const vms = this.prepare('SELECT COUNT(*) n FROM vms WHERE memory_bytes > 0').get() as { n: number }
    const held = this.prepare('SELECT COUNT(*) n FROM reservations WHERE memory_bytes > 0').get() as { n: number }
    return vms.n + held.n
  }

  /** Group → how many of this host's VM records (any state) or reservations are in it. */
  groupCounts (table: 'vms' | 'reservations'): Record<string, number> {
    const rows = this.prepare(`SELECT vm_group g, COUNT(*) n FROM ${table} WHERE vm_group != '' GROUP BY vm_group`).all() as Array<{ g: string, n: number }>
    const out: Record<string, number> = Object.create(null)
    for (const r of rows) out[r.g] = r.n
    return out
  }

  // --- name claims -------------------------------------------------------------------------

  getNameClaim (name: string): NameClaimRow | undefined {
    const raw = this.prepare('SELECT * FROM name_claims WHERE name = ?').get(name) as { name: string, idempotency_key: string, vm_id: string, broker_id: string, owner: string, expires_at: number | null } | undefined
    return raw === undefined ? undefined : { name: raw.name, idempotencyKey: raw.idempotency_key, vmId: raw.vm_id, brokerId: raw.broker_id, owner: raw.owner, expiresAt: raw.expires_at }
  }

  putNameClaim (c: NameClaimRow): void {
    this.prepare(`INSERT INTO name_claims (name, idempotency_key, vm_id, broker_id, owner, expires_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT(name) DO UPDATE SET idempotency_key = excluded.idempotency_key, vm_id = excluded.vm_id, broker_id = excluded.broker_id,
      owner = excluded.owner, expires_at = excluded.expires_at`)
      .run(c.name, c.idempotencyKey, c.vmId, c.brokerId, c.owner, c.expiresAt)
  }

  deleteNameClaim (name: string): void {
    this.prepare('DELETE FROM name_claims WHERE name = ?').run(name)
  }

  private sum (table: 'vms' | 'reservations'): Resources {
    const r = this.prepare(`SELECT COALESCE(SUM(vcpus),0) v, COALESCE(SUM(memory_bytes),0) m, COALESCE(SUM(disk_bytes),0) d FROM ${table}`).get() as { v: number, m: number, d: number }
    return { vcpus: r.v, memoryBytes: r.m, diskBytes: r.d }
  }

  private migrate (): void {
    const version = this.db.pragma('user_version', { simple: true }) as number
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v] as string)
        this.db.pragma(`user_version = ${v + 1}`)
      })()
    }
  }
}

function toVm (r: RawVm): VmRow {
  return {
    id: r.id, name: r.name, group: r.vm_group, spec: frozen(decodeVmSpec(r.spec)), placement: r.placement === null ? null : new Uint8Array(r.placement), owner: r.owner,
    epoch: r.epoch, state: r.state as VmRunState, desired: r.desired as DesiredState,
    resources: { vcpus: r.vcpus, memoryBytes: r.memory_bytes, diskBytes: r.disk_bytes },
    idempotencyKey: r.idempotency_key, createdAt: r.created_at, updatedAt: r.updated_at, startedAt: r.started_at, lastError: r.last_error,
    lastMigration: r.last_migration === null ? null : new Uint8Array(r.last_migration)
  }
}

/** A row callers may change without changing the cache (its spec is frozen, its byte fields are never written in place). */
function copyVm (r: VmRow): VmRow {
  return { ...r, resources: { ...r.resources } }
}

/** Deeply frozen: a caller that writes into a cached spec fails loudly instead of changing every later read. */
function frozen<T> (value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) frozen(v)
    Object.freeze(value)
  }
  return value
}

function toReservation (r: RawReservation): ReservationRow {
  return {
    token: r.token, requestId: r.request_id, brokerId: r.broker_id,
    resources: { vcpus: r.vcpus, memoryBytes: r.memory_bytes, diskBytes: r.disk_bytes },
    expiresAt: r.expires_at, createdAt: r.created_at, ...(r.vm_group !== '' ? { group: r.vm_group } : {})
  }
}
