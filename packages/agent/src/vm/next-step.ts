import type { DesiredState, VmRunState } from '../store/state-store.js'

/** What the driver says of a VM's guest when the owner looks: running, there but not running, or unknown to it. */
export type Observed = 'running' | 'not-running' | 'absent'

/** The one step the owner takes to bring a VM's guest towards its record (VmManager carries it out). */
export type Step =
  /** A live migration drives QEMU itself (source or destination): hands off. */
  | { do: 'leave-to-migration' }
  /** Fenced while it should run: the guest must be down until the lease says otherwise. */
  | { do: 'keep-down' }
  | { do: 'destroy' }
  /** The guest already is where the record wants it: only the record's state is brought in line. */
  | { do: 'record', state: 'running' | 'stopped' }
  /** Replicated and without its lease: it waits `fenced` (the lease starts it once held). */
  | { do: 'wait-for-lease' }
  /** `create` first when the driver does not know the VM (after a wipe, or a first start). */
  | { do: 'start', create: boolean }
  | { do: 'stop', force: boolean }

export interface VmRecordState { state: VmRunState, desired: DesiredState }

/** Whether `nextStep` needs to know what the driver sees (it does not for a migration's VM or a delete). */
export function needsObservation (vm: VmRecordState): boolean {
  return vm.state !== 'incoming' && vm.state !== 'migrating' && vm.desired !== 'deleted'
}

/**
 * The owner's next step for one VM, from its record, what the driver sees (`undefined` when
 * `needsObservation` says it is not needed) and whether the lease lets it run. Pure.
 */
export function nextStep (vm: VmRecordState, observed: Observed | undefined, opts: { mayRun: boolean, force: boolean }): Step {
  if (vm.state === 'incoming' || vm.state === 'migrating') return { do: 'leave-to-migration' }
  if (vm.desired === 'deleted') return { do: 'destroy' }
  if (vm.state === 'fenced' && vm.desired === 'running') return { do: 'keep-down' }
  if (vm.desired === 'running') {
    if (observed === 'running') return { do: 'record', state: 'running' }
    if (!opts.mayRun) return { do: 'wait-for-lease' }
    return { do: 'start', create: observed === 'absent' }
  }
  // desired stopped
  if (observed !== 'running') return { do: 'record', state: 'stopped' }
  return { do: 'stop', force: opts.force }
}
