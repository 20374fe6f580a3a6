import { cpus, totalmem } from 'node:os'
import { MACHINE_TYPE } from '../constants.js'
import { InvalidMigrationParamsError, MigrationFailedError, VmExistsError, VmNotFoundError, WrongStateError } from '../errors.js'
import { EventHub } from '../event-hub.js'
import { assertLegal } from '../lifecycle.js'
import { SimReplication } from '../backup/sim-replication.js'
import type { ReplicationCapable } from '../backup/types.js'
import { planResize, type VmResize } from '../resize.js'
import { foldOnlineGrowth, grownOnline } from '../memory-layout.js'
import { tcpAddress } from '../migration/migration-address.js'
import { resolveMigrationParams } from '../migration/migration-params.js'
import type { IncomingCompletion, IncomingMigration, LiveMigration, MigrateOutOptions, MigrationResult, PrepareIncomingOptions, CompleteIncomingOptions } from '../migration/types.js'
import { validateSpec, withoutImports, type HostLimits } from '../spec-validation.js'
import { checkSpecImages, type ImageSources } from '../image-sources.js'
import type { AbortOptions, Accelerator, ExitReason, HostFingerprint, Hypervisor, HypervisorCapabilities, HypervisorEvent, StartOptions, StopOptions, VmInfo, VmSpec, VmStats } from '../types.js'

export interface SimHypervisorInit {
  /** Pretend start latency (QEMU launch + QMP), in ms. Default 0. */
  startLatencyMs?: number
  /** Pretend graceful-stop latency (ACPI power-down honoured), in ms. Default 0. */
  stopLatencyMs?: number
  /** The host this simulation pretends to be; defaults to this machine. */
  hostLimits?: HostLimits
  accel?: Accelerator
  /** Ids prefix of the fake pids, so several simulated hosts in one process stay distinct. */
  firstPid?: number
  /** Pretend duration of migrateOut() (mirror + RAM), in ms. Default 0. */
  migrationLatencyMs?: number
  /** Pretend guest pause reported by a migration, in ms. Default 10. */
  migrationDowntimeMs?: number
  /** Where images may come from. The simulation reads no file, but refuses what QEMU would (host secrets). */
  images?: ImageSources
}

interface SimVm {
  spec: VmSpec
  state: VmInfo['state']
  pid?: number
  startedAt?: string
  exit?: { reason: ExitReason, at: string }
  /** Waiting for an incoming migration (destination). */
  incoming?: boolean
  /** Migrated out and paused, waiting for completeOutgoing/resumeOutgoing (source). */
  handedOver?: boolean
  migratingOut?: boolean
}

/**
 * An in-memory driver with configurable latency. It exists ONLY to measure the control plane at a
 * scale one machine cannot boot (hundreds of agents, thousands of VMs) and is never the CLI default:
 * no guest runs, nothing survives the process, recover() only finds VMs of this same instance.
 * The shared compliance suite runs against it and the QEMU driver so the two cannot drift apart.
 */
export class SimHypervisor implements Hypervisor, LiveMigration, ReplicationCapable {
  readonly capabilities: HypervisorCapabilities = { liveMigration: true, diskReplication: true }
  readonly driver = 'sim'
  /** In-memory disks and points, for control-plane tests of replication (backup/sim-replication). */
  readonly replication: SimReplication = new SimReplication({ inspect: async (id) => await this.inspect(id) })
  private readonly vms = new Map<string, SimVm>()
  private readonly hub = new EventHub<HypervisorEvent>()
  private readonly startLatencyMs: number
  private readonly stopLatencyMs: number
  private readonly limits: HostLimits
  private readonly accel: Accelerator
  private nextPid: number
  private readonly migrationLatencyMs: number
  private readonly migrationDowntimeMs: number
  private readonly failures = new Map<string, 'fail' | 'crash'>()
  private readonly images: ImageSources | undefined

  constructor (init: SimHypervisorInit = {}) {
    this.startLatencyMs = init.startLatencyMs ?? 0
    this.stopLatencyMs = init.stopLatencyMs ?? 0
    this.limits = init.hostLimits ?? { cpus: cpus().length, memoryMiB: Math.floor(totalmem() / 1024 / 1024) }
    this.accel = init.accel ?? 'tcg'
    this.nextPid = init.firstPid ?? 100_000
    this.migrationLatencyMs = init.migrationLatencyMs ?? 0
    this.migrationDowntimeMs = init.migrationDowntimeMs ?? 10
    this.images = init.images
  }

  async fingerprint (): Promise<HostFingerprint> {
    return { driver: 'sim', accel: this.accel, qemuVersion: 'sim', machineTypes: [MACHINE_TYPE], cpus: this.limits.cpus, memoryMiB: this.limits.memoryMiB, cpuModel: 'simulated', cpuFlags: [] }
  }

  /** The sizes, and with `images` the paths (the simulation reads no file, but refuses what QEMU would). */
  async checkSpec (spec: VmSpec): Promise<void> {
    validateSpec(spec, this.limits)
    if (this.images !== undefined) await checkSpecImages(spec, this.images)
  }

  async create (spec: VmSpec): Promise<VmInfo> {
    await this.checkSpec(spec)
    if (this.vms.has(spec.id)) throw new VmExistsError(`VM ${spec.id} already exists; destroy it first or pick another id`)
    const vm: SimVm = { spec: structuredClone(withoutImports(spec)), state: 'created' }
    this.vms.set(spec.id, vm)
    return this.info(vm)
  }

  async start (id: string, options: StartOptions = {}): Promise<VmInfo> {
    const vm = this.get(id)
    assertLegal(id, 'start', vm.state)
    if (vm.incoming === true) throw new WrongStateError(`VM ${id} is waiting for an incoming migration: complete or abort it, not start it`)
    await delay(this.startLatencyMs, options.signal)
    vm.spec = foldOnlineGrowth(vm.spec)
    vm.state = 'running'
    vm.pid = this.nextPid++
    vm.startedAt = new Date().toISOString()
    delete vm.exit
    this.hub.emit({ type: 'started', id, pid: vm.pid, at: vm.startedAt })
    return this.info(vm)
  }

  async stop (id: string, options: StopOptions = {}): Promise<VmInfo> {
    const vm = this.get(id)
    assertLegal(id, 'stop', vm.state)
    await delay(this.stopLatencyMs, options.signal)
    return this.exited(vm, 'guest-shutdown')
  }

  async kill (id: string): Promise<VmInfo> {
    const vm = this.get(id)
    assertLegal(id, 'kill', vm.state)
    return this.exited(vm, 'killed')
  }

  async inspect (id: string): Promise<VmInfo> {
    return this.info(this.get(id))
  }

  async resize (id: string, change: VmResize): Promise<VmInfo> {
    const vm = this.get(id)
    if (vm.incoming === true || vm.migratingOut === true || vm.handedOver === true) throw new WrongStateError(`VM ${id} is migrating: resize it once it has arrived`)
    const plan = planResize(vm.spec, change)
    validateSpec(plan.spec, this.limits)
    if (vm.state !== 'running') {
      vm.spec = foldOnlineGrowth(plan.spec)
      return this.info(vm)
    }
    // As the QEMU driver's memory hotplug decides, without a guest.
    vm.spec = plan.machineChanges ? grownOnline(vm.spec, plan.spec) : plan.spec
    return this.info(vm)
  }

  async stats (id: string): Promise<VmStats> {
    const vm = this.get(id)
    if (vm.state !== 'running') throw new WrongStateError(`VM ${id} is ${vm.state}: stats exist only while it runs`)
    const uptimeSeconds = (Date.now() - Date.parse(vm.startedAt ?? new Date().toISOString())) / 1000
    return { id, rssBytes: vm.spec.memoryMiB * 1024 * 1024, cpuSeconds: 0, uptimeSeconds }
  }

  async list (): Promise<VmInfo[]> {
    return [...this.vms.values()].map((vm) => this.info(vm)).sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  }

  async recover (id: string): Promise<VmInfo> {
    const vm = this.get(id)
    if (vm.state === 'running') this.hub.emit({ type: 'recovered', id, pid: vm.pid, at: new Date().toISOString() })
    return this.info(vm)
  }

  async destroy (id: string): Promise<void> {
    const vm = this.get(id)
    if (vm.state === 'running') this.exited(vm, 'killed')
    this.vms.delete(id)
  }

  async prepareIncoming (spec: VmSpec, options: PrepareIncomingOptions): Promise<IncomingMigration> {
    await this.checkSpec(spec)
    if (options.disks !== 'mirror' && options.disks !== 'shared') throw new InvalidMigrationParamsError(`disks must be 'mirror' or 'shared', not ${String(options.disks)}`)
    if (this.vms.has(spec.id)) throw new VmExistsError(`VM ${spec.id} already exists on this host; destroy the old copy before migrating it here`)
    const dir = `/sim/vms/${spec.id}`
    const disks = options.disks === 'mirror' ? (spec.disks ?? []).map((d) => d.name) : []
    const { tcp } = options
    const incoming: IncomingMigration = tcp !== undefined
      ? { id: spec.id, migrationSocket: tcpAddress(tcp.host, tcp.port), ...(disks.length > 0 ? { nbdSocket: tcpAddress(tcp.host, tcp.nbdPort ?? 0) } : {}), nbdExports: disks }
      : { id: spec.id, migrationSocket: `${dir}/migrate.sock`, ...(disks.length > 0 ? { nbdSocket: `${dir}/nbd.sock` } : {}), nbdExports: disks }
    this.vms.set(spec.id, { spec: structuredClone(spec), state: 'created', incoming: true })
    return incoming
  }

  async completeIncoming (id: string, options: CompleteIncomingOptions = {}): Promise<IncomingCompletion> {
    const vm = this.get(id)
    if (vm.incoming !== true) throw new WrongStateError(`VM ${id} is ${vm.state}, not waiting for an incoming migration`)
    delete vm.incoming
    if (options.stopped === true) {
      vm.state = 'stopped'
      return { info: this.info(vm), resumedAt: Date.now() }
    }
    vm.state = 'running'
    vm.pid = this.nextPid++
    vm.startedAt = new Date().toISOString()
    this.hub.emit({ type: 'started', id, pid: vm.pid, at: vm.startedAt })
    return { info: this.info(vm), resumedAt: Date.now() }
  }

  async abortIncoming (id: string): Promise<void> {
    const vm = this.vms.get(id)
    if (vm === undefined) return
    if (vm.incoming !== true) throw new WrongStateError(`VM ${id} is ${vm.state}, not an incoming migration: refusing to remove it`)
    this.vms.delete(id)
  }

  /** Simulated: waits `migrationLatencyMs`; fails (or crashes) if failNextMigration(id) was called. */
  async migrateOut (id: string, options: MigrateOutOptions): Promise<MigrationResult> {
    resolveMigrationParams(options)
    const vm = this.get(id)
    if (vm.state !== 'running' || vm.handedOver === true) throw new WrongStateError(`VM ${id} is ${vm.state}: only a running VM migrates live`)
    if (vm.migratingOut === true) throw new WrongStateError(`VM ${id} is already migrating out`)
    const started = Date.now()
    vm.migratingOut = true
    try {
      options.onProgress?.({ id, phase: 'ram', elapsedMs: 0, ram: { transferredBytes: 0, remainingBytes: vm.spec.memoryMiB * 1024 * 1024, totalBytes: vm.spec.memoryMiB * 1024 * 1024, dirtyPagesPerSec: 0, mbps: 0, passes: 0 } })
      await delay(this.migrationLatencyMs, options.signal)
      const failure = this.failures.get(id)
      this.failures.delete(id)
      if (failure === 'crash') this.exited(vm, 'crashed')
      if (failure !== undefined) throw new MigrationFailedError(`migration of VM ${id} failed (injected); ${failure === 'crash' ? 'the source QEMU exited during the attempt' : 'the guest still runs on the source'}`)
      if (vm.state !== 'running') throw new MigrationFailedError(`VM ${id} stopped during its migration`)
      vm.handedOver = true
      const totalMs = Date.now() - started
      return { id, downtimeMs: this.migrationDowntimeMs, ramMs: totalMs, mirrorMs: 0, totalMs, stoppedAt: Date.now() - this.migrationDowntimeMs, completedAt: Date.now(), mirrorsDoneAt: Date.now(), ramTransferredBytes: 0, diskBytes: 0, forced: false }
    } finally {
      delete vm.migratingOut
    }
  }

  async completeOutgoing (id: string): Promise<VmInfo> {
    const vm = this.get(id)
    if (vm.state !== 'running' || vm.handedOver !== true) throw new WrongStateError(`VM ${id} is ${vm.state} here, not migrated: refusing to quit it`)
    delete vm.handedOver
    return this.exited(vm, 'migrated')
  }

  async resumeOutgoing (id: string): Promise<VmInfo> {
    const vm = this.get(id)
    if (vm.state !== 'running') throw new WrongStateError(`VM ${id} is ${vm.state}: nothing to resume`)
    delete vm.handedOver
    return this.info(vm)
  }

  /**
   * Make the next migrateOut() of `id` fail (failure injection for control-plane tests); `crash`:
   * the source's process dies with it, as a QEMU can on an internal assertion.
   */
  failNextMigration (id: string, how: 'fail' | 'crash' = 'fail'): void {
    this.failures.set(id, how)
  }

  onEvent (listener: (event: HypervisorEvent) => void): () => void {
    return this.hub.on(listener)
  }

  events (options: AbortOptions = {}): AsyncIterable<HypervisorEvent> {
    return this.hub.iterate(options)
  }

  async close (): Promise<void> {}

  /** Simulate a crash of the guest's process (failure injection for control-plane tests). */
  crash (id: string): void {
    const vm = this.get(id)
    if (vm.state === 'running') this.exited(vm, 'crashed')
  }

  private exited (vm: SimVm, reason: ExitReason): VmInfo {
    vm.state = reason === 'crashed' ? 'crashed' : 'stopped'
    delete vm.pid
    vm.exit = { reason, at: new Date().toISOString() }
    this.hub.emit({ type: vm.state === 'crashed' ? 'crashed' : 'stopped', id: vm.spec.id, reason, at: vm.exit.at })
    return this.info(vm)
  }

  private get (id: string): SimVm {
    const vm = this.vms.get(id)
    if (vm === undefined) throw new VmNotFoundError(`VM ${id} does not exist on this host`)
    return vm
  }

  private info (vm: SimVm): VmInfo {
    const dir = `/sim/vms/${vm.spec.id}`
    const info: VmInfo = {
      id: vm.spec.id,
      state: vm.state,
      spec: structuredClone(vm.spec),
      accel: this.accel,
      paths: { dir, pidFile: `${dir}/qemu.pid`, qmpSocket: `${dir}/qmp.sock`, serialLog: `${dir}/serial.log`, serialSocket: `${dir}/tty.sock`, qemuLog: `${dir}/qemu.log`, disks: Object.fromEntries((vm.spec.disks ?? []).map((d) => [d.name, `${dir}/${d.name}.qcow2`])) }
    }
    if (vm.pid !== undefined) info.pid = vm.pid
    if (vm.startedAt !== undefined) info.startedAt = vm.startedAt
    if (vm.exit !== undefined) info.exit = { ...vm.exit }
    if (vm.incoming === true) info.migration = 'incoming'
    else if (vm.migratingOut === true) info.migration = 'outgoing'
    return info
  }
}

async function delay (ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, ms)
    const onAbort = (): void => { clearTimeout(timer); reject(signal?.reason ?? new Error('aborted')) }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
