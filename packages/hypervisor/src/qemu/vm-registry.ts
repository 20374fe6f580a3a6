import { SIGTERM_TIMEOUT_MS } from '../constants.js'
import { VmNotFoundError } from '../errors.js'
import { EventHub } from '../event-hub.js'
import type { AbortOptions, ExitReason, HypervisorEvent, VmInfo } from '../types.js'
import { connectQmp, readQemuLog } from './qemu-launcher.js'
import { QemuProcess } from './qemu-process.js'
import type { QmpClient } from './qmp-client.js'
import { VmAttachment } from './vm-attachment.js'
import { vmPaths } from './vm-paths.js'
import { readRecord, writeRecord, type VmRecord } from './vm-record.js'

export interface VmRegistryInit {
  dataDir: string
  qmpTimeoutMs: number
  log: (message: string, fields: Record<string, unknown>) => void
}

/**
 * The VMs one QEMU driver instance knows: each VM's record reconciled with the QEMU behind it (its
 * pid file), the attachments this instance holds, and the bookkeeping of their exits. QemuLifecycle
 * builds the Hypervisor operations on it; nothing here takes the VM's queue.
 */
export abstract class VmRegistry {
  readonly dataDir: string
  protected readonly qmpTimeoutMs: number
  protected readonly log: (message: string, fields: Record<string, unknown>) => void
  protected readonly hub = new EventHub<HypervisorEvent>()
  private readonly attached = new Map<string, VmAttachment>()
  /** Per attachment: resolves once its exit is recorded and announced. */
  protected readonly recorded = new WeakMap<VmAttachment, Promise<void>>()
  /** Paused QEMUs waiting for a migration stream (not attached: they are not running VMs yet). */
  protected readonly incoming = new Map<string, { proc: QemuProcess, qmp: QmpClient }>()
  protected readonly outgoing = new Set<string>()

  constructor (init: VmRegistryInit) {
    this.dataDir = init.dataDir
    this.qmpTimeoutMs = init.qmpTimeoutMs
    this.log = init.log
  }

  /** Let go of every QEMU this instance holds; they keep running, and a new instance recovers them. */
  async close (): Promise<void> {
    for (const a of this.attached.values()) a.detach()
    this.attached.clear()
    for (const s of this.incoming.values()) s.qmp.close()
    this.incoming.clear()
  }

  /** SIGKILL the incoming QEMU (ours, or found by its pid file after a restart) and wait for it. */
  protected async killIncoming (id: string): Promise<void> {
    const session = this.incoming.get(id)
    this.incoming.delete(id)
    session?.qmp.close()
    const proc = session?.proc ?? await QemuProcess.fromPidFile(vmPaths(this.dataDir, { id }).pidFile)
    if (proc === undefined) return
    await proc.signal('SIGKILL')
    await proc.waitForExit(SIGTERM_TIMEOUT_MS)
  }

  /** The current record, corrected for a QEMU that exited while no driver was attached. */
  protected async refresh (id: string): Promise<VmRecord> {
    const record = await this.load(id)
    if (record.state !== 'running' || this.attached.has(id)) return record
    const proc = await QemuProcess.fromPidFile(vmPaths(this.dataDir, record.spec).pidFile)
    if (proc !== undefined) return record
    return await this.exitedWith(record, 'exited-while-detached')
  }

  /** The attachment for a running VM, re-attaching (pid file + QMP) when this instance has none. */
  protected async attachment (id: string, record: VmRecord, options: AbortOptions = {}): Promise<VmAttachment> {
    const current = this.attached.get(id)
    if (current !== undefined) return current
    const paths = vmPaths(this.dataDir, record.spec)
    const proc = await QemuProcess.fromPidFile(paths.pidFile)
    if (proc === undefined) throw new VmNotFoundError(`VM ${id}: no live QEMU behind ${paths.pidFile}`)
    const qmp = await connectQmp(paths, { timeoutMs: this.qmpTimeoutMs, signal: options.signal })
    return this.attach(id, proc, qmp)
  }

  /** SIGKILL, through the attachment when we can get one, else by pid (e.g. QMP held by another client). */
  protected async killRunning (id: string, record: VmRecord, options: AbortOptions): Promise<void> {
    let attachment: VmAttachment
    try {
      attachment = await this.attachment(id, record, options)
    } catch (err) {
      const proc = await QemuProcess.fromPidFile(vmPaths(this.dataDir, record.spec).pidFile)
      if (proc === undefined) throw err
      this.log('killing by pid: monitor unreachable', { vm: id, pid: proc.pid, error: String(err) })
      await proc.signal('SIGKILL')
      await proc.waitForExit(SIGTERM_TIMEOUT_MS)
      await this.exitedWith(record, 'killed')
      return
    }
    await attachment.kill('killed')
    await this.recorded.get(attachment)
  }

  protected attach (id: string, proc: QemuProcess, qmp: QmpClient): VmAttachment {
    const attachment = new VmAttachment(id, proc, qmp)
    this.attached.set(id, attachment)
    const recorded = attachment.exited.then(async (reason) => {
      if (this.attached.get(id) === attachment) this.attached.delete(id)
      if (reason === undefined) return
      const record = await readRecord(vmPaths(this.dataDir, { id }).dir)
      if (record !== undefined) await this.exitedWith(record, reason)
    }).catch((err: unknown) => { this.log('exit bookkeeping failed', { vm: id, error: String(err) }) })
    this.recorded.set(attachment, recorded)
    return attachment
  }

  private async exitedWith (record: VmRecord, reason: ExitReason): Promise<VmRecord> {
    const state = reason === 'crashed' || reason === 'exited-while-detached' ? 'crashed' : 'stopped'
    const at = new Date().toISOString()
    const next: VmRecord = { ...record, state, exit: { reason, at } }
    await writeRecord(vmPaths(this.dataDir, record.spec).dir, next)
    const qemuSaid = state === 'crashed' ? await readQemuLog(vmPaths(this.dataDir, record.spec).qemuLog) : ''
    this.log(`vm ${state}`, { vm: record.spec.id, reason, ...(qemuSaid !== '' ? { qemuLog: qemuSaid } : {}) })
    this.hub.emit({ type: state === 'crashed' ? 'crashed' : 'stopped', id: record.spec.id, reason, at })
    return next
  }

  protected async inspectNow (id: string): Promise<VmInfo> {
    const record = await this.load(id)
    const attachment = this.attached.get(id)
    if (attachment !== undefined) return this.info(record, attachment.proc.pid)
    if (record.state !== 'running') return this.info(record)
    // Running under no driver of ours (yet): report the live pid, or the exit we can infer.
    const proc = await QemuProcess.fromPidFile(vmPaths(this.dataDir, record.spec).pidFile)
    if (proc !== undefined) return this.info(record, proc.pid)
    return this.info({ ...record, state: 'crashed', exit: { reason: 'exited-while-detached', at: new Date().toISOString() } })
  }

  protected async load (id: string): Promise<VmRecord> {
    const record = await readRecord(vmPaths(this.dataDir, { id }).dir)
    if (record === undefined) throw new VmNotFoundError(`VM ${id} does not exist on this host`)
    return record
  }

  protected info (record: VmRecord, pid?: number): VmInfo {
    const info: VmInfo = { id: record.spec.id, state: record.state, spec: record.spec, accel: record.accel, paths: vmPaths(this.dataDir, record.spec) }
    if (pid !== undefined && record.state === 'running') info.pid = pid
    if (record.startedAt !== undefined) info.startedAt = record.startedAt
    if (record.exit !== undefined) info.exit = record.exit
    if (record.incoming !== undefined) info.migration = 'incoming'
    else if (this.outgoing.has(record.spec.id)) info.migration = 'outgoing'
    return info
  }
}
