import type { EventDraft } from './cluster-event.js'

/** What the event stream needs to know of one VM this host owns. */
export interface VmFacts {
  id: string
  name: string
  epoch: number
  /** The owner's run state (state-store's VmRunState). */
  state: string
  lastError: string
}

const ON_ENTERING: Record<string, EventDraft['kind'] | undefined> = {
  running: 'vm-started',
  stopped: 'vm-stopped',
  crashed: 'vm-crashed',
  failed: 'vm-failed'
}

/**
 * The events that explain the change from `before` to `after` (VMs by id). Transient states
 * (pending, starting, stopping, deleting, migrating) make no event of their own: the operator
 * cares about where a VM settled. A live migration is told once, by the destination when the
 * guest runs there (the VM appears with a later epoch); the source forgetting it is no deletion.
 */
export function diffVms (before: ReadonlyMap<string, VmFacts>, after: ReadonlyMap<string, VmFacts>): EventDraft[] {
  const drafts: EventDraft[] = []
  const about = (vm: VmFacts): Pick<EventDraft, 'vmId' | 'vmName' | 'vmEpoch'> => ({ vmId: vm.id, vmName: vm.name, vmEpoch: vm.epoch })
  for (const vm of after.values()) {
    const old = before.get(vm.id)
    if (old === undefined && vm.epoch > 1) {
      // Arrived with a later epoch: a migration (running at once) or a failover (the lease told it
      // as vm-failed-over; vm-started follows when the guest runs). Neither is a creation.
      if (vm.state === 'running') drafts.push({ kind: 'vm-migrated', ...about(vm), message: `now owned here, epoch ${vm.epoch}` })
      continue
    }
    if (old?.state === 'migrating' && vm.state === 'running') {
      drafts.push({ kind: 'vm-migration-failed', ...about(vm), message: 'the guest runs on at the source' })
      continue
    }
    if (old === undefined) drafts.push({ kind: 'vm-created', ...about(vm) })
    if (old?.state === vm.state) continue
    const kind = ON_ENTERING[vm.state]
    if (kind === undefined) continue
    // A VM created stopped has not "stopped".
    if (old === undefined && kind === 'vm-stopped') continue
    const message = kind === 'vm-crashed' || kind === 'vm-failed' ? vm.lastError : ''
    drafts.push({ kind, ...about(vm), message })
  }
  for (const vm of before.values()) {
    if (!after.has(vm.id) && vm.state !== 'migrating') drafts.push({ kind: 'vm-deleted', ...about(vm) })
  }
  return drafts
}
