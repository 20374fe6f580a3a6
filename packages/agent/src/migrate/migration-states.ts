import { pb, type meshvirt } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'
import { newVmRow } from '../vm/new-vm-row.js'
import type { VmSpec } from '../vm/vm-spec-codec.js'
import type { ResourceLedger } from '../ledger/resource-ledger.js'
import type { Logger } from '../log/logger.js'
import type { StateStore, VmRow } from '../store/state-store.js'

export interface MigrationStatesDeps {
  selfId: string
  store: StateStore
  ledger: ResourceLedger
  log: Logger
  clock?: () => number
  /** What this host owns changed (the agent re-advertises). */
  onChange: () => void
  /** A guest's QEMU exited on its own (the restart policy takes it from there). */
  onGuestExited?: (vm: VmRow, reason: string) => void
}

/**
 * The VM records a live migration writes, each before the step it stands for (docs/design.md
 * principle 6): on the destination an `incoming` row holding the reservation's resources, which
 * becomes the VM (new epoch) when the guest runs there or disappears if it never does; on the
 * source `migrating`, then gone once the destination owns it, or as it was (`running`, or
 * `stopped` for a cold migration) on failure.
 */
export class MigrationStates {
  private readonly clock: () => number

  constructor (private readonly deps: MigrationStatesDeps) {
    this.clock = deps.clock ?? Date.now
  }

  get (id: string): VmRow | undefined {
    return this.deps.store.getVm(id)
  }

  /** Destination: the reservation becomes a VM row in state `incoming` (not yet ours: not listed or gossiped). */
  recordIncoming (input: { token: string, vmId: string, spec: VmSpec, epoch: number, placement?: meshvirt.v1.IPlacementExplanation | null }): VmRow {
    const { store, ledger, selfId } = this.deps
    const row = store.durable((): VmRow => {
      if (store.getVm(input.vmId) !== undefined) throw new ControlError('ALREADY_EXISTS', `VM ${input.vmId} already exists on this host`)
      const reservation = ledger.take(input.token)
      if (reservation === undefined) throw new ControlError('RESERVATION_EXPIRED', 'the reservation for the incoming VM expired')
      const vm = newVmRow({ id: input.vmId, spec: input.spec, placement: input.placement, owner: selfId, epoch: input.epoch, state: 'incoming', resources: reservation.resources, idempotencyKey: null, now: this.clock() })
      store.insertVm(vm)
      return vm
    })
    this.deps.onChange()
    return row
  }

  /** Destination: the VM is this host's now, with its new epoch: its guest runs here, or (cold) it is stopped here. */
  incomingArrived (id: string, record: meshvirt.v1.IMigrationRecord, stopped = false): void {
    const now = this.clock()
    const lastMigration = pb.MigrationRecord.encode(record).finish()
    this.deps.store.durable(() => {
      this.deps.store.updateVm(id, stopped ? { state: 'stopped', desired: 'stopped', lastMigration } : { state: 'running', startedAt: now, lastMigration }, now)
    })
    this.deps.onChange()
    this.deps.log.info(stopped ? 'vm migrated in (cold: stopped)' : 'vm migrated in', { vm: id, from: record.fromHost, downtimeMs: record.downtimeMs, pauseMs: record.pauseMs })
  }

  /** Destination: forget an incoming VM that did not arrive (frees its allocation). */
  dropIncoming (id: string): void {
    const vm = this.deps.store.getVm(id)
    if (vm?.state !== 'incoming') return
    this.deps.store.deleteVm(id)
    this.deps.onChange()
  }

  /** Source: the VM is being migrated, live (running) or cold (stopped); no other operation until it ends. */
  beginOutgoing (id: string): VmRow {
    const vm = this.deps.store.getVm(id)
    if (vm === undefined) throw new ControlError('NOT_FOUND', `no VM ${id} on this host`)
    if (vm.state !== 'running' && vm.state !== 'stopped') throw new ControlError('WRONG_STATE', `cannot migrate VM ${vm.name}: it is ${vm.state} (a running VM migrates live, a stopped one cold)`)
    this.deps.store.updateVm(id, { state: 'migrating' }, this.clock())
    this.deps.onChange()
    return vm
  }

  /**
   * Source: the migration failed; the VM is here as it was (its guest running, or stopped), or
   * `crashed` when its QEMU exited during the attempt, which the restart policy then hears of.
   */
  outgoingFailed (id: string, record: meshvirt.v1.IMigrationRecord, left: 'running' | 'stopped' | 'crashed' = 'running'): void {
    const lastMigration = pb.MigrationRecord.encode(record).finish()
    if (left !== 'crashed') {
      this.deps.store.updateVm(id, { state: left, lastMigration }, this.clock())
      this.deps.onChange()
      return
    }
    const reason = `its QEMU exited during a failed migration (${record.error ?? 'no reason given'})`
    this.deps.store.updateVm(id, { state: 'crashed', lastError: `guest exited: ${reason}`, lastMigration }, this.clock())
    this.deps.onChange()
    const row = this.deps.store.getVm(id)
    if (row !== undefined) this.deps.onGuestExited?.(row, reason)
  }

  /** Source: the VM now lives on the destination; forget it here (frees its allocation). */
  outgoingDone (id: string): void {
    this.deps.store.durable(() => { this.deps.store.deleteVm(id) })
    this.deps.onChange()
  }
}
