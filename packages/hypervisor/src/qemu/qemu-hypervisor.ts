import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { MAX_SOCKET_PATH, SIGTERM_TIMEOUT_MS } from '../constants.js'
import { HypervisorError, InvalidMigrationParamsError, PathOutsideDataDirError, VmExistsError, VmNotFoundError, WrongStateError } from '../errors.js'
import { checkMultifdChannels, resolveMigrationParams } from '../migration/migration-params.js'
import { announceSelf } from '../migration/announce.js'
import { listenIncoming, quitIncoming, resumeIncoming } from '../migration/qemu-incoming.js'
import { OutgoingMigration, removeMigrationNodes } from '../migration/qemu-outgoing.js'
import { parseMigrationAddress, tcpAddress } from '../migration/migration-address.js'
import { checkPsk, installTlsCreds, removeTlsCreds, MIGRATION_TLS_ID } from '../migration/migration-tls.js'
import type { CompleteIncomingOptions, IncomingCompletion, IncomingMigration, IncomingTcp, LiveMigration, MigrateOutOptions, MigrationResult, PrepareIncomingOptions } from '../migration/types.js'
import { validateSpec, withoutImports } from '../spec-validation.js'
import type { AbortOptions, HypervisorCapabilities, VmInfo, VmSpec } from '../types.js'
import { createDisk } from './disks.js'
import { writeSeedIso } from './seed-iso.js'
import { connectQmp, launchQemu } from './qemu-launcher.js'
import { QemuLifecycle } from './qemu-lifecycle.js'
import { QemuProcess } from './qemu-process.js'
import type { QmpClient } from './qmp-client.js'
import { vmPaths } from './vm-paths.js'
import { asDiskFull, writeRecord, readRecord, type VmRecord } from './vm-record.js'

export type { QemuHypervisorInit } from './qemu-lifecycle.js'

/**
 * Real QEMU guests (the lifecycle, in QemuLifecycle) that also migrate live: a paused incoming QEMU
 * fed by the source's stream and disk mirror, the hand-over, and its undoing when the hand-over fails.
 */
export class QemuHypervisor extends QemuLifecycle implements LiveMigration {
  readonly capabilities: HypervisorCapabilities = { liveMigration: true, diskReplication: true }

  /**
   * Diagnostics: write the guest's RAM as the spec sizes it (physical addresses from 0) to `file`,
   * for a running VM or an incoming one. Both ends of a migration are paused between migrateOut()
   * and completeIncoming(): their RAM must then be byte for byte the same.
   */
  async saveGuestRam (id: string, file: string, options: AbortOptions = {}): Promise<void> {
    const record = await this.load(id)
    const qmp = this.incoming.get(id)?.qmp ?? await this.monitor(id, options)
    await qmp.execute('pmemsave', { val: 0, size: record.spec.memoryMiB * 1024 * 1024, filename: file }, { timeoutMs: 60_000, signal: options.signal })
  }

  async prepareIncoming (spec: VmSpec, options: PrepareIncomingOptions): Promise<IncomingMigration> {
    validateSpec(spec, this.limits)
    const checked = await this.checkImages(spec)
    if (options.disks !== 'mirror' && options.disks !== 'shared') throw new InvalidMigrationParamsError(`disks must be 'mirror' or 'shared', not ${String(options.disks)}`)
    return await this.serialize(spec.id, async () => {
      const paths = vmPaths(this.dataDir, checked)
      if (await readRecord(paths.dir) !== undefined) throw new VmExistsError(`VM ${spec.id} already exists on this host; destroy the old copy before migrating it here`)
      const disks = options.disks === 'mirror' ? (checked.disks ?? []).map((d) => d.name) : []
      const incoming = incomingAddresses(spec.id, paths.dir, disks, options.tcp)
      let proc: QemuProcess | undefined
      let qmp: QmpClient | undefined
      try {
        await mkdir(paths.dir, { recursive: true })
        // The destination's disks start empty (or as the same thin overlay on the same base) and
        // are filled by the source's mirror; `shared` disks are already in place.
        if (options.disks === 'mirror') {
          for (const disk of checked.disks ?? []) {
            await createDisk({ qemuImg: this.qemuImg, path: paths.disks[disk.name] as string, sizeMiB: disk.sizeMiB, base: disk.base, signal: options.signal })
          }
        }
        // Rebuilt here, not copied: the same files give the source's bytes (seed-iso.ts).
        if (checked.seed !== undefined) await writeSeedIso({ xorriso: this.xorriso, dir: paths.dir, seed: checked.seed, signal: options.signal })
        const record: VmRecord = { version: 1, spec: withoutImports(checked), accel: this.accel, createdAt: new Date().toISOString(), state: 'created', incoming: { disks: options.disks, since: new Date().toISOString() } }
        await writeRecord(paths.dir, record)
        proc = await launchQemu({ spec: checked, paths, accel: this.accel, incoming: 'defer' }, { qemuBinary: this.qemu, timeoutMs: this.launchTimeoutMs, signal: options.signal })
        qmp = await connectQmp(paths, { timeoutMs: this.qmpTimeoutMs, signal: options.signal })
        const nbd = incoming.nbdSocket !== undefined ? { socket: incoming.nbdSocket, disks } : undefined
        const tls = options.tcp?.tls
        if (tls !== undefined) await installTlsCreds(qmp, paths.dir, 'server', tls)
        await listenIncoming(qmp, {
          migrationSocket: incoming.migrationSocket, ...(nbd !== undefined ? { nbd } : {}),
          ...(tls !== undefined ? { tlsCreds: MIGRATION_TLS_ID } : {}),
          ...(options.tcp?.multifdChannels !== undefined ? { multifdChannels: options.tcp.multifdChannels } : {})
        })
      } catch (err) {
        qmp?.close()
        if (proc !== undefined) { await proc.signal('SIGKILL'); await proc.waitForExit(SIGTERM_TIMEOUT_MS) }
        await rm(paths.dir, { recursive: true, force: true })
        throw asDiskFull(err, `prepare incoming VM ${spec.id}`)
      }
      this.incoming.set(spec.id, { proc, qmp })
      this.log('vm incoming', { vm: spec.id, pid: proc.pid, disks: options.disks })
      return incoming
    })
  }

  async completeIncoming (id: string, options: CompleteIncomingOptions = {}): Promise<IncomingCompletion> {
    return await this.serialize(id, async () => {
      const record = await this.load(id)
      if (record.incoming === undefined) throw new WrongStateError(`VM ${id} is ${record.state}, not waiting for an incoming migration`)
      const session = this.incoming.get(id) ?? await this.incomingSession(id, record, options)
      const disks = record.incoming.disks === 'mirror' ? (record.spec.disks ?? []).map((d) => d.name) : []
      if (options.stopped === true) return await this.arrivedStopped(id, record, session, disks, options)
      const resumedAt = await resumeIncoming(session.qmp, disks, options.signal)
      if ((record.spec.nics ?? []).length > 0) {
        // Best effort: a lost announcement costs the guest's traffic until it next sends, never the migration.
        await announceSelf(session.qmp, options.signal).catch((err: unknown) => { this.log('announce-self failed', { vm: id, error: String(err) }) })
      }
      // The key has done its work (stream loaded, NBD server stopped): it must not outlive the migration.
      await removeTlsCreds(session.qmp, join(vmPaths(this.dataDir, record.spec).dir, 'tls-in'))
      const { incoming: _done, ...rest } = record
      const next: VmRecord = { ...rest, state: 'running', startedAt: new Date(resumedAt).toISOString() }
      await writeRecord(vmPaths(this.dataDir, record.spec).dir, next)
      this.incoming.delete(id)
      // From here it is an ordinary running VM: stop, kill, recover and stats work as for any other.
      this.attach(id, session.proc, session.qmp)
      this.log('vm migrated in', { vm: id, pid: session.proc.pid })
      this.hub.emit({ type: 'started', id, pid: session.proc.pid, at: next.startedAt as string })
      return { info: this.info(next, session.proc.pid), resumedAt }
    })
  }

  /** A cold migration's destination: QEMU quits with the disks flushed; the VM is here, stopped. */
  private async arrivedStopped (id: string, record: VmRecord, session: { proc: QemuProcess, qmp: QmpClient }, disks: string[], options: AbortOptions): Promise<IncomingCompletion> {
    await quitIncoming(session.qmp, disks, options.signal)
    session.qmp.close()
    if (!await session.proc.waitForExit(SIGTERM_TIMEOUT_MS)) {
      throw new WrongStateError(`VM ${id}: the incoming QEMU (pid ${session.proc.pid}) did not quit after its cold migration; abort it on this host`)
    }
    const { incoming: _done, ...rest } = record
    const at = new Date().toISOString()
    const next: VmRecord = { ...rest, state: 'stopped', exit: { reason: 'migrated', at } }
    await writeRecord(vmPaths(this.dataDir, record.spec).dir, next)
    this.incoming.delete(id)
    this.log('vm migrated in, stopped (cold)', { vm: id })
    return { info: this.info(next), resumedAt: Date.now() }
  }

  async abortIncoming (id: string): Promise<void> {
    await this.serialize(id, async () => {
      const record = await readRecord(vmPaths(this.dataDir, { id }).dir)
      if (record !== undefined && record.incoming === undefined) throw new WrongStateError(`VM ${id} is ${record.state}, not an incoming migration: refusing to remove it`)
      await this.killIncoming(id)
      await rm(vmPaths(this.dataDir, { id }).dir, { recursive: true, force: true })
      this.log('vm incoming aborted', { vm: id })
    })
  }

  async migrateOut (id: string, options: MigrateOutOptions): Promise<MigrationResult> {
    const params = resolveMigrationParams(options)
    parseMigrationAddress(options.migrationSocket)
    if (options.nbdSocket !== undefined) parseMigrationAddress(options.nbdSocket)
    checkMultifdChannels(options.multifdChannels)
    if (options.tls !== undefined) {
      checkPsk(options.tls)
      if (parseMigrationAddress(options.migrationSocket).type !== 'inet') throw new InvalidMigrationParamsError('migration TLS needs a tcp:HOST:PORT destination (the mesh tunnel is encrypted already)')
    }
    if (this.outgoing.has(id)) throw new WrongStateError(`VM ${id} is already migrating out`)
    const info = await this.inspectNow(id)
    if (info.state !== 'running') throw new WrongStateError(`VM ${id} is ${info.state}: only a running VM migrates live`)
    if (info.accel === 'tcg' && (info.spec.memoryDimmsMiB ?? []).length > 0) {
      // Its DIMMs' RAM blocks are whole multiples of 256 KiB: the QEMU 7.2 TCG bug guest-ram.ts
      // keeps the boot RAM clear of would lose guest writes in them.
      throw new WrongStateError(`VM ${id} has memory added while it ran, and under TCG QEMU 7.2 may lose guest writes to it in a live migration: restart the VM (its memory then boots whole) and migrate it then`)
    }
    const qmp = await this.monitor(id, options)
    this.outgoing.add(id)
    try {
      const disks = options.nbdSocket !== undefined ? (info.spec.disks ?? []).map((d) => d.name) : []
      const full = new Set(options.fullDisks ?? [])
      const topOnly = (info.spec.disks ?? []).filter((d) => d.sharedBase === true && d.base !== undefined && !full.has(d.name)).map((d) => d.name)
      // The client's credentials read the key once, when created: the file goes at once.
      if (options.tls !== undefined) await removeTlsCreds(undefined, await installTlsCreds(qmp, vmPaths(this.dataDir, info.spec).dir, 'client', options.tls))
      // Not under the VM's queue: stop() or kill() during a long migration must still get through.
      const result = await new OutgoingMigration(qmp, {
        id, migrationSocket: options.migrationSocket, disks, topOnly, params,
        ...(options.tls !== undefined ? { tlsCreds: MIGRATION_TLS_ID } : {}),
        ...(options.multifdChannels !== undefined ? { multifdChannels: options.multifdChannels } : {}),
        ...(options.nbdSocket !== undefined ? { nbdSocket: options.nbdSocket } : {}),
        ...(options.onProgress !== undefined ? { onProgress: options.onProgress } : {}),
        ...(options.signal !== undefined ? { signal: options.signal } : {})
      }).run()
      this.log('vm migrated out', { vm: id, downtimeMs: result.downtimeMs, totalMs: result.totalMs })
      return result
    } finally {
      this.outgoing.delete(id)
    }
  }

  async completeOutgoing (id: string, options: AbortOptions = {}): Promise<VmInfo> {
    return await this.serialize(id, async () => {
      const record = await this.refresh(id)
      if (record.state !== 'running') throw new WrongStateError(`VM ${id} is ${record.state}: nothing to hand over`)
      const attachment = await this.attachment(id, record, options)
      const { status } = await attachment.qmp.execute<{ status: string }>('query-status', undefined, options)
      // Only a QEMU whose migration completed may go: never quit a guest that still runs here.
      if (status !== 'postmigrate') throw new WrongStateError(`VM ${id} is ${status} here, not migrated: refusing to quit it`)
      await attachment.kill('migrated')
      await this.recorded.get(attachment)
      return await this.inspectNow(id)
    })
  }

  async resumeOutgoing (id: string, options: AbortOptions = {}): Promise<VmInfo> {
    return await this.serialize(id, async () => {
      const record = await this.refresh(id)
      if (record.state !== 'running') throw new WrongStateError(`VM ${id} is ${record.state}: nothing to resume`)
      const attachment = await this.attachment(id, record, options)
      const { status } = await attachment.qmp.execute<{ status: string }>('query-status', undefined, options)
      // cont re-activates the disks the switchover inactivated; the destination never ran, so they are current.
      await removeMigrationNodes(attachment.qmp, (record.spec.disks ?? []).map((d) => d.name))
      if (status !== 'running') await attachment.qmp.execute('cont', undefined, options)
      this.log('vm resumed after a failed hand-over', { vm: id, was: status })
      return await this.inspectNow(id)
    })
  }

  /** Re-connect to an incoming QEMU left by an earlier driver instance. */
  private async incomingSession (id: string, record: VmRecord, options: AbortOptions): Promise<{ proc: QemuProcess, qmp: QmpClient }> {
    const paths = vmPaths(this.dataDir, record.spec)
    const proc = await QemuProcess.fromPidFile(paths.pidFile)
    if (proc === undefined) throw new VmNotFoundError(`VM ${id}: its incoming QEMU is gone; abort the incoming migration`)
    const qmp = await connectQmp(paths, { timeoutMs: this.qmpTimeoutMs, signal: options.signal })
    this.incoming.set(id, { proc, qmp })
    return { proc, qmp }
  }
}

/** Where an incoming QEMU listens: its VM dir's unix sockets, or the caller's TCP ports (the direct comparison path). */
function incomingAddresses (id: string, dir: string, disks: string[], tcp: IncomingTcp | undefined): IncomingMigration {
  if (tcp === undefined) {
    return { id, migrationSocket: socketIn(dir, 'migrate.sock'), ...(disks.length > 0 ? { nbdSocket: socketIn(dir, 'nbd.sock') } : {}), nbdExports: disks }
  }
  if (disks.length > 0 && tcp.nbdPort === undefined) throw new InvalidMigrationParamsError(`VM ${id} has disks to mirror: an incoming migration over TCP needs an nbdPort`)
  if (tcp.tls !== undefined) checkPsk(tcp.tls)
  checkMultifdChannels(tcp.multifdChannels)
  return { id, migrationSocket: tcpAddress(tcp.host, tcp.port), ...(disks.length > 0 ? { nbdSocket: tcpAddress(tcp.host, tcp.nbdPort as number) } : {}), nbdExports: disks }
}

function socketIn (dir: string, name: string): string {
  const path = join(dir, name)
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) throw new PathOutsideDataDirError(`socket path ${path} is longer than the ${MAX_SOCKET_PATH} bytes a unix socket allows: use a shorter data dir`)
  return path
}

export function isHypervisorError (err: unknown, code?: string): err is HypervisorError {
  return err instanceof Error && typeof (err as HypervisorError).code === 'string' && (code === undefined || (err as HypervisorError).code === code)
}
