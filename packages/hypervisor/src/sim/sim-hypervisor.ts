import { cpus, totalmem } from 'node:os'
import { MACHINE_TYPE } from '../constants.js'
import { VmExistsError, VmNotFoundError, WrongStateError } from '../errors.js'
import { EventHub } from '../event-hub.js'
import { assertLegal } from '../lifecycle.js'
import { validateSpec, type HostLimits } from '../spec-validation.js'
import type { AbortOptions, Accelerator, ExitReason, HostFingerprint, Hypervisor, HypervisorEvent, StopOptions, VmInfo, VmSpec, VmStats } from '../types.js'

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
}

interface SimVm {
  spec: VmSpec
  state: VmInfo['state']
  pid?: number
  startedAt?: string
  exit?: { reason: ExitReason, at: string }
}

/**
 * An in-memory driver with configurable latency. It exists ONLY to measure the control plane at a
 * scale one machine cannot boot (hundreds of agents, thousands of VMs) and is never the CLI default:
 * no guest runs, nothing survives the process, recover() only finds VMs of this same instance.
 * The shared compliance suite runs against it and the QEMU driver so the two cannot drift apart.
 */
export class SimHypervisor implements Hypervisor {
  readonly driver = 'sim'
  private readonly vms = new Map<string, SimVm>()
  private readonly hub = new EventHub<HypervisorEvent>()
  private readonly startLatencyMs: number
  private readonly stopLatencyMs: number
  private readonly limits: HostLimits
  private readonly accel: Accelerator
  private nextPid: number

  constructor (init: SimHypervisorInit = {}) {
    this.startLatencyMs = init.startLatencyMs ?? 0
    this.stopLatencyMs = init.stopLatencyMs ?? 0
    this.limits = init.hostLimits ?? { cpus: cpus().length, memoryMiB: Math.floor(totalmem() / 1024 / 1024) }
    this.accel = init.accel ?? 'tcg'
    this.nextPid = init.firstPid ?? 100_000
  }

  async fingerprint (): Promise<HostFingerprint> {
    return { driver: 'sim', accel: this.accel, qemuVersion: 'sim', machineTypes: [MACHINE_TYPE], cpus: this.limits.cpus, memoryMiB: this.limits.memoryMiB, cpuModel: 'simulated', cpuFlags: [] }
  }

  async create (spec: VmSpec): Promise<VmInfo> {
    validateSpec(spec, this.limits)
    if (this.vms.has(spec.id)) throw new VmExistsError(`VM ${spec.id} already exists; destroy it first or pick another id`)
    const vm: SimVm = { spec: structuredClone(spec), state: 'created' }
    this.vms.set(spec.id, vm)
    return this.info(vm)
  }

  async start (id: string, options: AbortOptions = {}): Promise<VmInfo> {
    const vm = this.get(id)
    assertLegal(id, 'start', vm.state)
    await delay(this.startLatencyMs, options.signal)
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

  async stats (id: string): Promise<VmStats> {
    const vm = this.get(id)
    if (vm.state !== 'running') throw new WrongStateError(`VM ${id} is ${vm.state}: stats exist only while it runs`)
    const uptimeSeconds = (Date.now() - Date.parse(vm.startedAt ?? new Date().toISOString())) / 1000
    return { id, rssBytes: vm.spec.memoryMiB * 1024 * 1024, cpuSeconds: 0, uptimeSeconds }
  }

  async list (): Promise<VmInfo[]> {
    return [...this.vms.values()].map((vm) => this.info(vm)).sort((a, b) => a.id.localeCompare(b.id))
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
      paths: { dir, pidFile: `${dir}/qemu.pid`, qmpSocket: `${dir}/qmp.sock`, serialLog: `${dir}/serial.log`, disks: Object.fromEntries((vm.spec.disks ?? []).map((d) => [d.name, `${dir}/${d.name}.qcow2`])) }
    }
    if (vm.pid !== undefined) info.pid = vm.pid
    if (vm.startedAt !== undefined) info.startedAt = vm.startedAt
    if (vm.exit !== undefined) info.exit = { ...vm.exit }
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
