import { mkdir, rm } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import { ACPI_TIMEOUT_MS, LAUNCH_TIMEOUT_MS, QEMU_GUEST_OVERHEAD_MIB, QMP_COMMAND_TIMEOUT_MS, SIGTERM_TIMEOUT_MS } from '../constants.js'
import { ImageMissingError, VmExistsError, WrongStateError } from '../errors.js'
import { assertLegal } from '../lifecycle.js'
import { QemuReplication } from '../backup/qemu-replication.js'
import type { ReplicationCapable } from '../backup/types.js'
import { planResize, type VmResize } from '../resize.js'
import { validateSpec, withoutImports, type HostLimits } from '../spec-validation.js'
import type { AbortOptions, Accelerator, HostFingerprint, Hypervisor, HypervisorCapabilities, HypervisorEvent, StartOptions, StopOptions, VmInfo, VmSpec, VmStats } from '../types.js'
import { createDisk, readable } from './disks.js'
import { foldOnlineGrowth } from '../memory-layout.js'
import { resizeGuest } from './guest-resize.js'
import { writeSeedIso } from './seed-iso.js'
import { hostFingerprint } from './fingerprint.js'
import { connectQmp, launchQemu } from './qemu-launcher.js'
import { QemuProcess } from './qemu-process.js'
import type { QmpClient } from './qmp-client.js'
import { vmPaths } from './vm-paths.js'
import { VmRegistry } from './vm-registry.js'
import { checkSpecImages, ImageSources } from '../image-sources.js'
import { asDiskFull, listRecordIds, readRecord, writeRecord, type VmRecord } from './vm-record.js'
import { readGuestIo } from './guest-io.js'

export interface QemuHypervisorInit {
  /** Root of everything the driver writes: `<dataDir>/vms/<id>/`. */
  dataDir: string
  /** Decide it with `probeAccelerator()`; never from the mere presence of /dev/kvm. Default `tcg`. */
  accel?: Accelerator
  /** Dirs kernels, initrds and base images may come from (besides `<dataDir>/images`). */
  imageDirs?: string[]
  /** Files never read as a boot source besides the data dir itself (the cluster key file). */
  secrets?: string[]
  qemuBinary?: string
  qemuImgBinary?: string
  /** Writes VMs' cloud-init seeds (Debian package xorriso). */
  xorrisoBinary?: string
  acpiTimeoutMs?: number
  termTimeoutMs?: number
  launchTimeoutMs?: number
  qmpTimeoutMs?: number
  /** Host size used to refuse oversize VMs; defaults to this machine's CPUs and memory. */
  hostLimits?: HostLimits
  /** Structured log sink (component `meshvirt:hypervisor:qemu`). */
  log?: (message: string, fields: Record<string, unknown>) => void
}

/**
 * The lifecycle half of the QEMU driver: real guests, detached from the agent. Each VM's pid file,
 * QMP socket, serial log, disks and record live in its own dir, so a new driver instance can
 * `recover()` it after an agent restart. Built on VmRegistry (records, attachments, exits);
 * `QemuHypervisor` adds live migration on top.
 */
export abstract class QemuLifecycle extends VmRegistry implements Hypervisor, ReplicationCapable {
  abstract readonly capabilities: HypervisorCapabilities
  readonly driver = 'qemu'
  readonly guestMemoryOverheadMiB = QEMU_GUEST_OVERHEAD_MIB
  /** Continuous disk replication: crash-consistent points of running guests (backup/). */
  readonly replication: QemuReplication
  readonly accel: Accelerator
  private readonly images: ImageSources
  protected readonly qemu: string
  protected readonly qemuImg: string
  protected readonly xorriso: string
  private readonly acpiTimeoutMs: number
  private readonly termTimeoutMs: number
  protected readonly launchTimeoutMs: number
  protected readonly limits: HostLimits
  private readonly queues = new Map<string, Promise<unknown>>()

  constructor (init: QemuHypervisorInit) {
    super({ dataDir: resolve(init.dataDir), qmpTimeoutMs: init.qmpTimeoutMs ?? QMP_COMMAND_TIMEOUT_MS, log: init.log ?? (() => {}) })
    this.accel = init.accel ?? 'tcg'
    this.images = new ImageSources({ imageDirs: init.imageDirs ?? [], dataDir: this.dataDir, secrets: init.secrets ?? [] })
    this.qemu = init.qemuBinary ?? 'qemu-system-x86_64'
    this.qemuImg = init.qemuImgBinary ?? 'qemu-img'
    this.xorriso = init.xorrisoBinary ?? 'xorriso'
    this.acpiTimeoutMs = init.acpiTimeoutMs ?? ACPI_TIMEOUT_MS
    this.termTimeoutMs = init.termTimeoutMs ?? SIGTERM_TIMEOUT_MS
    this.launchTimeoutMs = init.launchTimeoutMs ?? LAUNCH_TIMEOUT_MS
    this.limits = init.hostLimits ?? { cpus: cpus().length, memoryMiB: Math.floor(totalmem() / 1024 / 1024) }
    this.replication = new QemuReplication({ qemuImg: this.qemuImg, monitor: async (id, o) => await this.monitor(id, o), inspect: async (id) => await this.inspectNow(id), log: this.log })
  }

  async fingerprint (options: AbortOptions = {}): Promise<HostFingerprint> {
    return await hostFingerprint(this.qemu, this.accel, options)
  }

  async checkSpec (spec: VmSpec): Promise<void> {
    validateSpec(spec, this.limits)
    await this.checkImages(spec)
  }

  async create (spec: VmSpec, options: AbortOptions = {}): Promise<VmInfo> {
    validateSpec(spec, this.limits)
    const checked = await this.checkImages(spec)
    return await this.serialize(spec.id, async () => {
      const paths = vmPaths(this.dataDir, checked)
      if (await readRecord(paths.dir) !== undefined) throw new VmExistsError(`VM ${spec.id} already exists; destroy it first or pick another id`)
      if (checked.boot.kind === 'kernel') {
        for (const file of [checked.boot.kernel, checked.boot.initrd]) {
          if (file !== undefined && !await readable(file)) throw new ImageMissingError(`VM ${spec.id}: boot file ${file} does not exist (build the guest with scripts/build-guest)`)
        }
      }
      try {
        await mkdir(paths.dir, { recursive: true })
        for (const disk of checked.disks ?? []) {
          await createDisk({ qemuImg: this.qemuImg, path: paths.disks[disk.name] as string, sizeMiB: disk.sizeMiB, base: disk.base, importFrom: disk.importFrom, signal: options.signal })
        }
        if (checked.seed !== undefined) await writeSeedIso({ xorriso: this.xorriso, dir: paths.dir, seed: checked.seed, signal: options.signal })
        const record: VmRecord = { version: 1, spec: withoutImports(checked), accel: this.accel, createdAt: new Date().toISOString(), state: 'created' }
        await writeRecord(paths.dir, record)
        this.log('vm created', { vm: spec.id, dir: paths.dir })
        return this.info(record)
      } catch (err) {
        await rm(paths.dir, { recursive: true, force: true })
        throw asDiskFull(err, `create VM ${spec.id}`)
      }
    })
  }

  async start (id: string, options: StartOptions = {}): Promise<VmInfo> {
    return await this.serialize(id, async () => {
      const record = await this.refresh(id)
      assertLegal(id, 'start', record.state)
      if (record.incoming !== undefined) throw new WrongStateError(`VM ${id} is waiting for an incoming migration: complete or abort it, not start it`)
      const paths = vmPaths(this.dataDir, record.spec)
      // A fresh boot: memory added while it last ran becomes boot memory.
      const spec = foldOnlineGrowth(record.spec)
      const proc = await launchQemu({ spec, paths, accel: record.accel, ...(options.paused === true ? { paused: true } : {}) }, { qemuBinary: this.qemu, timeoutMs: this.launchTimeoutMs, signal: options.signal })
      const next: VmRecord = { ...record, spec, state: 'running', startedAt: new Date().toISOString(), exit: undefined }
      let qmp: QmpClient | undefined
      try {
        qmp = await connectQmp(paths, { timeoutMs: this.qmpTimeoutMs, signal: options.signal })
        // Recorded before attaching: a guest that exits at once must find `running` to overwrite.
        await writeRecord(paths.dir, next)
      } catch (err) {
        qmp?.close()
        await proc.signal('SIGKILL')
        throw err
      }
      this.attach(id, proc, qmp)
      this.log('vm started', { vm: id, pid: proc.pid, accel: record.accel, ...(options.paused === true ? { paused: true } : {}) })
      this.hub.emit({ type: 'started', id, pid: proc.pid, at: next.startedAt as string })
      return this.info(next, proc.pid)
    })
  }

  async stop (id: string, options: StopOptions = {}): Promise<VmInfo> {
    return await this.serialize(id, async () => {
      const record = await this.refresh(id)
      assertLegal(id, 'stop', record.state)
      const attachment = await this.attachment(id, record)
      await attachment.stop({
        acpiTimeoutMs: options.acpiTimeoutMs ?? this.acpiTimeoutMs,
        termTimeoutMs: options.termTimeoutMs ?? this.termTimeoutMs,
        signal: options.signal
      })
      await this.recorded.get(attachment)
      return await this.inspectNow(id)
    })
  }

  async kill (id: string, options: AbortOptions = {}): Promise<VmInfo> {
    return await this.serialize(id, async () => {
      const record = await this.refresh(id)
      assertLegal(id, 'kill', record.state)
      await this.killRunning(id, record, options)
      return await this.inspectNow(id)
    })
  }

  async inspect (id: string): Promise<VmInfo> {
    return await this.inspectNow(id)
  }

  async stats (id: string): Promise<VmStats> {
    const info = await this.inspectNow(id)
    if (info.state !== 'running' || info.pid === undefined) throw new WrongStateError(`VM ${id} is ${info.state}: stats exist only while it runs`)
    const usage = await new QemuProcess(info.pid, info.paths.pidFile).usage()
    if (usage === undefined) throw new WrongStateError(`VM ${id}: its QEMU (pid ${info.pid}) has just exited`)
    // The QEMU process's own age: its CPU time counts from its launch, before the VM's start record.
    const { ageSeconds, ...counters } = usage
    return { id, ...counters, ...await readGuestIo(info.pid, (info.spec.nics ?? []).map((n) => n.tap)), uptimeSeconds: ageSeconds }
  }

  async list (): Promise<VmInfo[]> {
    const ids = await listRecordIds(join(this.dataDir, 'vms'))
    const infos: VmInfo[] = []
    for (const id of ids) {
      // One unreadable record must not hide every other VM; inspect(id) reports its error.
      try { infos.push(await this.inspectNow(id)) } catch (err) { this.log('vm record unreadable', { vm: id, error: String(err) }) }
    }
    return infos
  }

  async recover (id: string, options: AbortOptions = {}): Promise<VmInfo> {
    return await this.serialize(id, async () => {
      const record = await this.refresh(id)
      if (record.state === 'running') {
        const attachment = await this.attachment(id, record, options)
        this.log('vm recovered', { vm: id, pid: attachment.proc.pid })
        this.hub.emit({ type: 'recovered', id, pid: attachment.proc.pid, at: new Date().toISOString() })
      }
      return await this.inspectNow(id)
    })
  }

  async resize (id: string, change: VmResize, options: AbortOptions = {}): Promise<VmInfo> {
    return await this.serialize(id, async () => {
      const record = await this.refresh(id)
      if (record.incoming !== undefined || this.outgoing.has(id)) throw new WrongStateError(`VM ${id} is migrating: resize it once it has arrived`)
      const plan = planResize(record.spec, change)
      validateSpec(plan.spec, this.limits)
      const running = record.state === 'running'
      const qmp = running ? (await this.attachment(id, record, options)).qmp : undefined
      const spec = await resizeGuest({ qemuImg: this.qemuImg, paths: vmPaths(this.dataDir, plan.spec), qmp }, record.spec, plan, options.signal)
      await writeRecord(vmPaths(this.dataDir, spec).dir, { ...record, spec })
      this.log('vm resized', { vm: id, vcpus: spec.vcpus, memoryMiB: spec.memoryMiB, dimmsMiB: spec.memoryDimmsMiB, disks: plan.grownDisks, online: running })
      return await this.inspectNow(id)
    })
  }

  async destroy (id: string, options: AbortOptions = {}): Promise<void> {
    // QEMU first: a replication point in flight then fails at once instead of finishing its copy.
    await this.serialize(id, async () => {
      const record = await this.refresh(id)
      if (record.state === 'running') await this.killRunning(id, record, options)
      if (record.incoming !== undefined) await this.killIncoming(id)
    })
    // The directory only once no replication operation of the VM is in flight: one would write
    // into it again (ENOTEMPTY on the removal, or files left behind). Lock order: replication, then VM.
    await this.replication.exclusive(id, async () => {
      await this.serialize(id, async () => {
        const record = await this.refresh(id)
        if (record.state === 'running') await this.killRunning(id, record, options)
        await rm(vmPaths(this.dataDir, record.spec).dir, { recursive: true, force: true })
        this.log('vm destroyed', { vm: id })
      })
    })
  }

  /**
   * The VM's one QMP connection (attaching if needed), for the operations that build on the
   * lifecycle: migration, dirty bitmaps and backups, statistics. Do not close it.
   */
  async monitor (id: string, options: AbortOptions = {}): Promise<QmpClient> {
    return await this.serialize(id, async () => {
      const record = await this.refresh(id)
      if (record.state !== 'running') throw new WrongStateError(`VM ${id} is ${record.state}: its monitor exists only while it runs`)
      return (await this.attachment(id, record, options)).qmp
    })
  }

  onEvent (listener: (event: HypervisorEvent) => void): () => void {
    return this.hub.on(listener)
  }

  events (options: AbortOptions = {}): AsyncIterable<HypervisorEvent> {
    return this.hub.iterate(options)
  }

  /** The spec with every image path checked (symlinks resolved): never a host secret, only the image dirs. */
  protected async checkImages (spec: VmSpec): Promise<VmSpec> {
    return await checkSpecImages(spec, this.images)
  }

  /** One operation at a time per VM; operations on different VMs run concurrently. */
  protected async serialize<T> (id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(id) ?? Promise.resolve()
    const run = previous.then(fn, fn)
    const settled = run.catch(() => {})
    this.queues.set(id, settled)
    try {
      return await run
    } finally {
      if (this.queues.get(id) === settled) this.queues.delete(id)
    }
  }
}
