import { offersLiveMigration, type Hypervisor, type HypervisorEvent } from '@meshvirt/hypervisor'
import type { VmSummary } from '@meshvirt/mesh'
import type { meshvirt } from '@meshvirt/proto'
import { ControlError, toControlError } from '../control/errors.js'
import { KeyedQueue } from '../util/keyed-queue.js'
import { newVmRow } from './new-vm-row.js'
import { needsObservation, nextStep, type Observed } from './next-step.js'
import type { ResourceLedger } from '../ledger/resource-ledger.js'
import type { Logger } from '../log/logger.js'
import type { LeaseRecords } from '../store/lease-records.js'
import type { StateStore, VmRow, VmRunState } from '../store/state-store.js'
import { specResources, validateReplication } from './vm-spec.js'
import type { VmSpec } from './vm-spec-codec.js'
import { readConsoleLog } from './console-log.js'
import { decideResize, driverRefusal, type SizeRequest } from './vm-resize.js'
import type { VmPreparation } from './vm-preparation.js'
import type { VmDetails } from './vm-details.js'
import { LEGAL } from './vm-state.js'
import { VmSummaries } from './vm-summaries.js'
import type { AgentEvents } from '../util/agent-events.js'
import { staysDown } from './restart-policy.js'

export interface VmManagerDeps {
  selfId: string
  store: StateStore
  ledger: ResourceLedger
  /** The VM's lease history goes with it when it is deleted. */
  leases: LeaseRecords
  hypervisor: Hypervisor
  /** How a committed VM's guest gets its disks and other per-VM resources (and gives them back). */
  preparation: VmPreparation
  log: Logger
  clock?: () => number
  /** Where it announces its changes: vm:changed (the advert follows), vm:committed, guest:exited (the restart policy). */
  events: AgentEvents
  /**
   * Whether the guest may be started now. A replicated VM's guest runs only while its lease is held
   * (another host may run it otherwise); until then it waits `fenced`, and the lease resumes it.
   */
  mayRun?: (vm: VmRow) => boolean
  /** What the parts beside this one add to a VM's VmInfo (migration progress, replicas, the lease, restarts). */
  details: VmDetails
  /** Asked before a VM found down at recovery is started (false: not started; the gate dealt with it). */
  recoveryGate?: (vm: VmRow) => Promise<boolean>
}

export interface CommitInput {
  token: string
  vmId: string
  spec: VmSpec
  placement?: meshvirt.v1.IPlacementExplanation | null
  idempotencyKey: string
}

/**
 * The owner side of the VM lifecycle. Every change is written to the store *before* it is acted
 * on (desired state first, then the hypervisor call, then the observed state), so an agent
 * killed at any step finds on restart what it was doing and resumes it (`recover`).
 * Work on one VM is serialized; different VMs proceed in parallel.
 */
export class VmManager {
  private readonly drives = new KeyedQueue()
  private readonly resizes = new KeyedQueue()
  /** What made each VM `failed` (the driver's typed error: its code reaches the operator). */
  private readonly failures = new Map<string, unknown>()
  private readonly views: VmSummaries
  private readonly clock: () => number
  private unsubscribe: (() => void) | undefined

  constructor (private readonly deps: VmManagerDeps) {
    this.clock = deps.clock ?? Date.now
    this.views = new VmSummaries(deps.details)
  }

  /** Turns a reservation into a VM this host owns (epoch 1) and starts it. Idempotent per VM id. */
  commit (input: CommitInput): VmRow {
    const { store, ledger, selfId } = this.deps
    const row = store.durable((): VmRow => {
      const existing = store.getVm(input.vmId)
      if (existing !== undefined) {
        ledger.take(input.token) // a duplicate commit must not leave its reservation behind
        return existing
      }
      const reservation = ledger.take(input.token)
      if (reservation === undefined) throw new ControlError('RESERVATION_EXPIRED', 'the reservation expired or was never granted: place the VM again')
      const want = specResources(input.spec)
      const r = reservation.resources
      if (r.vcpus !== want.vcpus || r.memoryBytes !== want.memoryBytes || r.diskBytes !== want.diskBytes) {
        throw new ControlError('INVALID_ARGUMENT', 'the VM spec asks for other resources than were reserved')
      }
      const vm = newVmRow({ id: input.vmId, spec: input.spec, placement: input.placement, owner: selfId, epoch: 1, state: 'pending', resources: want, idempotencyKey: input.idempotencyKey, now: this.clock() })
      store.insertVm(vm)
      return vm
    })
    this.changed()
    this.deps.events.emit('vm:committed', { vmId: row.id })
    this.deps.log.info('vm committed', { vm: row.id, name: row.name, epoch: row.epoch })
    void this.drive(row.id)
    return row
  }

  get (id: string): VmRow | undefined {
    return this.deps.store.getVm(id)
  }

  findByName (name: string): VmRow | undefined {
    return this.deps.store.findVmByName(name)
  }

  /** The VMs this host owns (an incoming migration is not one of them yet). */
  list (): VmRow[] {
    return this.deps.store.listVms().filter((vm) => vm.state !== 'incoming')
  }

  async start (id: string): Promise<VmRow> {
    return await this.request(id, 'start', 'running')
  }

  async stop (id: string, force = false): Promise<VmRow> {
    return await this.request(id, 'stop', 'stopped', force)
  }

  async delete (id: string): Promise<void> {
    await this.request(id, 'delete', 'deleted')
  }

  /**
   * Self-fencing: this host cannot prove its lease on the VM, so its guest stops now (killed: a
   * guest shutdown could outlast the lease) and stays down until the lease resumes it or another
   * host takes the VM over. Recorded, with why.
   */
  async fence (id: string, reason: string): Promise<void> {
    const vm = this.deps.store.getVm(id)
    if (vm === undefined) return
    this.deps.store.updateVm(id, { state: 'fenced', lastError: `fenced: ${reason}` }, this.clock())
    this.changed()
    await this.drive(id)
    this.deps.log.warn('vm fenced: its guest is stopped until the lease says otherwise', { vm: id, name: vm.name, reason })
  }

  /** The lease is proven again at the same epoch (nobody took the VM over): run the guest again. */
  async resume (id: string): Promise<void> {
    const vm = this.deps.store.getVm(id)
    if (vm?.state !== 'fenced') return
    this.deps.store.updateVm(id, { state: 'pending', lastError: '' }, this.clock())
    this.changed()
    this.deps.log.info('vm resumed after a fence: its lease is proven again', { vm: id, name: vm.name })
    await this.drive(id)
  }

  /**
   * Another host owns the VM now (a higher epoch): remove it here, guest and disk; the caller keeps
   * this host as a holder of its replica if the new owner wants one. Returns the row it was.
   */
  async relinquish (id: string): Promise<VmRow | undefined> {
    const vm = this.deps.store.getVm(id)
    if (vm === undefined) return undefined
    this.deps.store.updateVm(id, { state: 'fenced', desired: 'deleted' }, this.clock())
    await this.drive(id)
    this.deps.log.warn('vm relinquished: another host owns it at a higher epoch', { vm: id, name: vm.name, epoch: vm.epoch })
    return vm
  }

  /** Change how the VM is replicated (`vm replicate`): the replication loop follows the spec. */
  setReplication (id: string, change: { replicas: number, rpoMs: number, spreadBy: string }): VmRow {
    const vm = this.deps.store.getVm(id)
    if (vm === undefined) throw new ControlError('NOT_FOUND', `no VM ${id} on this host`)
    const spec = { ...vm.spec, replicas: change.replicas, rpoMs: change.rpoMs > 0 ? change.rpoMs : vm.spec.rpoMs, spreadBy: change.spreadBy !== '' ? change.spreadBy : vm.spec.spreadBy }
    validateReplication(spec)
    this.deps.store.updateVm(id, { spec }, this.clock())
    this.deps.log.info('vm replication changed', { vm: id, replicas: spec.replicas, rpoMs: spec.rpoMs, spreadBy: spec.spreadBy })
    this.changed()
    return this.deps.store.getVm(id) as VmRow
  }

  /**
   * A piece of the VM's serial console log from `offset`; `maxBytes` 0 only reports the size
   * (where a `--follow` should start). The log survives guest restarts and agent restarts.
   */
  async readConsole (id: string, offset: number, maxBytes: number): Promise<{ data: Uint8Array, nextOffset: number }> {
    return await readConsoleLog((await this.deps.hypervisor.inspect(id)).paths.serialLog, offset, maxBytes)
  }

  /**
   * `vm resize` on the owner: the growth is granted by this host's ledger and recorded (one
   * transaction), then the driver resizes the guest (a running one's disk and memory online; vCPUs
   * across a restart, when asked). A refusal anywhere leaves the VM as it was. One resize of a VM at
   * a time: each decides from the size the one before it left.
   */
  async resize (id: string, req: SizeRequest, restartAllowed: boolean): Promise<VmRow> {
    return await this.resizes.call(id, async () => await this.resizeNow(id, req, restartAllowed))
  }

  private async resizeNow (id: string, req: SizeRequest, restartAllowed: boolean): Promise<VmRow> {
    const { store, ledger, hypervisor: hv, selfId } = this.deps
    const vm = store.getVm(id)
    if (vm === undefined) throw new ControlError('NOT_FOUND', `no VM ${id} on this host`)
    const decision = decideResize(vm, vm.spec, req, restartAllowed)
    if (decision.do === 'nothing') return vm
    const granted = ledger.resize(vm.resources, decision.next, () => {
      store.updateVm(id, { resources: decision.next, spec: decision.spec }, this.clock())
    })
    if (!granted.ok) throw new ControlError('NO_CAPACITY', `host ${selfId.slice(-12)} cannot grow VM ${vm.name}: ${granted.message}`, { shortOf: granted.shortOf })
    try {
      if (decision.restart) await this.stop(id)
      await this.drives.call(id, async () => await hv.resize(id, decision.driver))
    } catch (err) {
      ledger.resize(decision.next, vm.resources, () => { store.updateVm(id, { resources: vm.resources, spec: vm.spec }, this.clock()) })
      if (decision.restart) await this.start(id).catch(() => {})
      throw driverRefusal(err, vm.name, !decision.restart && decision.driver.memoryMiB !== undefined)
    }
    this.deps.log.info('vm resized', { vm: id, name: vm.name, vcpus: decision.next.vcpus, memoryBytes: decision.next.memoryBytes, diskBytes: decision.next.diskBytes, restart: decision.restart })
    this.changed()
    return decision.restart ? await this.start(id) : store.getVm(id) as VmRow
  }

  /** After an agent restart: re-attach to every guest that still runs, resume what was under way. */
  async recover (): Promise<void> {
    const hv = this.deps.hypervisor
    this.unsubscribe ??= hv.onEvent((e) => { this.onHypervisorEvent(e) })
    for (const vm of this.deps.store.listVms()) {
      if (vm.state === 'incoming') {
        // The agent died while receiving: the source keeps (or resumed) the guest.
        if (offersLiveMigration(hv)) await hv.abortIncoming(vm.id).catch(() => {})
        await this.deps.preparation.release(vm.id)
        this.deps.store.deleteVm(vm.id)
        this.deps.log.warn('dropped an incoming migration interrupted by a restart', { vm: vm.id })
        continue
      }
      if (vm.state === 'migrating' && vm.desired !== 'running') {
        // The agent died while moving a stopped VM (cold): its paused QEMU goes, the VM stays stopped.
        await hv.kill(vm.id).catch(() => {})
        this.setState(vm.id, 'stopped')
      } else if (vm.state === 'migrating') {
        // The agent died while sending: the guest is still here; run it (resume if paused).
        if (offersLiveMigration(hv)) await hv.resumeOutgoing(vm.id).catch(() => {})
        this.setState(vm.id, 'running')
      }
      // Its per-VM resources first (the taps of its NICs): re-adopted if they survived, made again if not.
      await this.deps.preparation.restore(vm.id, vm.spec)
      try {
        const info = await this.deps.hypervisor.recover(vm.id)
        if (info.state === 'running') {
          this.setState(vm.id, 'running')
          this.deps.log.info('re-attached to running guest', { vm: vm.id, pid: info.pid })
          if (vm.desired === 'running') continue
        }
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_VM_NOT_FOUND') this.deps.log.warn('recover failed', { vm: vm.id, err: (err as Error).message })
      }
      if (staysDown(vm)) {
        if (vm.state !== 'crashed') this.deps.store.updateVm(vm.id, { state: 'crashed', lastError: 'the guest exited while the agent was down (restart policy never)' }, this.clock())
        continue
      }
      void this.driveRecovered(vm)
    }
  }

  private async driveRecovered (vm: VmRow): Promise<void> {
    const gate = this.deps.recoveryGate
    const go = gate === undefined ? true : await gate(vm).catch(() => true)
    if (go) await this.drive(vm.id)
  }

  /** Detach from the guests (they keep running) and stop listening to the driver. */
  async close (): Promise<void> {
    this.unsubscribe?.()
    await this.drives.idle()
  }

  summaries (): VmSummary[] {
    return this.list().map((vm) => this.views.summary(vm))
  }

  info (vm: VmRow): meshvirt.v1.IVmInfo {
    return this.views.info(vm)
  }

  private async request (id: string, action: 'start' | 'stop' | 'delete', desired: VmRow['desired'], force = false): Promise<VmRow> {
    const vm = this.deps.store.getVm(id)
    if (vm === undefined) throw new ControlError('NOT_FOUND', `no VM ${id} on this host`)
    if (!LEGAL[action].includes(vm.state) && !(action === 'start' && vm.desired === 'running')) {
      throw new ControlError('WRONG_STATE', `cannot ${action} VM ${vm.name}: it is ${vm.state}`)
    }
    this.deps.store.updateVm(id, { desired }, this.clock())
    await this.drive(id, force)
    const after = this.deps.store.getVm(id)
    if (after === undefined) return { ...vm, state: 'deleting' }
    if (after.state === 'failed') throw toControlError(this.failures.get(id) ?? new Error(after.lastError ?? 'unknown error'), 'FAILED', `VM ${vm.name} failed to ${action}`)
    return after
  }

  /** Moves the VM towards its desired state; one drive at a time per VM. */
  private async drive (id: string, force = false): Promise<void> {
    await this.drives.run(id, async () => { await this.converge(id, force) }, (err) => {
      this.deps.log.error('vm drive failed', { vm: id, err: (err as Error).message })
    })
  }

  private async converge (id: string, force: boolean): Promise<void> {
    const { hypervisor: hv, store, log } = this.deps
    const vm = store.getVm(id)
    if (vm === undefined) return
    try {
      const observed = needsObservation(vm) ? await this.observe(id, vm.state === 'fenced') : undefined
      const step = nextStep(vm, observed, { mayRun: this.deps.mayRun?.(vm) !== false, force })
      switch (step.do) {
        case 'leave-to-migration':
          return
        case 'keep-down':
          if (observed === 'running') await hv.kill(id)
          return
        case 'destroy':
          this.setState(id, 'deleting')
          await hv.destroy(id).catch((err: { code?: string }) => { if (err.code !== 'ERR_VM_NOT_FOUND') throw err })
          await this.deps.preparation.release(id)
          store.transaction(() => {
            store.deleteVm(id)
            this.deps.leases.forgetHistory(id)
          })
          this.failures.delete(id)
          this.changed()
          log.info('vm deleted', { vm: id, name: vm.name })
          return
        case 'record':
          this.setState(id, step.state)
          return
        case 'wait-for-lease':
          store.updateVm(id, { state: 'fenced', lastError: 'waiting for its lease: the guest runs only while a majority of its replica group renews it' }, this.clock())
          this.changed()
          log.info('vm waits for its lease before it starts', { vm: id, name: vm.name })
          return
        case 'start': {
          this.setState(id, 'starting')
          if (step.create) await hv.create(await this.deps.preparation.prepare(id, vm.spec, { kind: 'create' }))
          const info = await hv.start(id)
          store.updateVm(id, { state: 'running', startedAt: this.clock(), lastError: '' }, this.clock())
          this.changed()
          log.info('vm running', { vm: id, name: vm.name, pid: info.pid })
          return
        }
        case 'stop':
          this.setState(id, 'stopping')
          if (step.force) await hv.kill(id)
          else await hv.stop(id)
          this.setState(id, 'stopped')
          log.info('vm stopped', { vm: id, name: vm.name, force: step.force })
      }
    } catch (err) {
      const message = (err as Error).message
      store.updateVm(id, { state: 'failed', lastError: message }, this.clock())
      this.failures.set(id, err)
      this.changed()
      log.warn('vm action failed', { vm: id, name: vm.name, desired: vm.desired, err: message })
    }
  }

  /** What the driver sees of the guest; `tolerant`: any error reads as absent (a fenced guest only has to be down). */
  private async observe (id: string, tolerant: boolean): Promise<Observed> {
    try {
      const info = await this.deps.hypervisor.inspect(id)
      return info.state === 'running' ? 'running' : 'not-running'
    } catch (err) {
      if (tolerant || (err as { code?: string }).code === 'ERR_VM_NOT_FOUND') return 'absent'
      throw err
    }
  }

  private onHypervisorEvent (e: HypervisorEvent): void {
    const vm = this.deps.store.getVm(e.id)
    if (vm === undefined || this.drives.busy(e.id) || vm.state === 'fenced') return
    if (e.type === 'crashed') {
      this.deps.store.updateVm(e.id, { state: 'crashed', lastError: `guest exited: ${e.reason}` }, this.clock())
      this.changed()
      this.deps.log.warn('vm crashed', { vm: e.id, reason: e.reason })
      this.exited(e.id, e.reason)
    } else if (e.type === 'stopped' && vm.state === 'running') {
      // Powered off from inside the guest: respect it (only restart policy always starts it again).
      this.deps.store.updateVm(e.id, { state: 'stopped', desired: 'stopped' }, this.clock())
      this.changed()
      this.exited(e.id, e.reason)
    }
  }

  private exited (id: string, reason: string): void {
    const row = this.deps.store.getVm(id)
    if (row !== undefined) this.deps.events.emit('guest:exited', { vm: row, reason })
  }

  private setState (id: string, state: VmRunState): void {
    this.deps.store.updateVm(id, { state }, this.clock())
    this.changed()
  }

  private changed (): void {
    this.deps.events.emit('vm:changed', {})
  }
}
