import { Counter, type Registry } from 'prom-client'
import type { Logger } from '../log/logger.js'
import type { VmRow } from '../store/state-store.js'
import { restartDecision } from './restart-policy.js'

export interface GuestRestarterDeps {
  vms: {
    get: (id: string) => VmRow | undefined
    start: (id: string) => Promise<VmRow>
  }
  log: Logger
  /** Tells the cluster (the event stream): kind vm-restarted. */
  emit?: (e: { vmId: string, vmName: string, vmEpoch: number, message: string }) => void
  clock?: () => number
  /** Asked before each restart (the VM records: a VM force-deleted while this host was away is deleted, not restarted). */
  gate?: (vm: VmRow) => Promise<boolean>
}

/**
 * The owner's restart policy in action: a guest that exited on its own (VmManager.onGuestExit) is
 * started again after the back-off `restartDecision` says, unless something else happened to the
 * VM meanwhile (deleted, started or stopped by the operator, migrated). A replicated VM goes
 * through the VM manager's start, so it still runs only while it holds its lease.
 */
export class GuestRestarter {
  private readonly timers = new Map<string, NodeJS.Timeout>()
  private readonly inARow = new Map<string, number>()
  private readonly total = new Map<string, { name: string, count: number }>()
  private readonly clock: () => number
  private stopped = false

  constructor (private readonly deps: GuestRestarterDeps) {
    this.clock = deps.clock ?? Date.now
  }

  /** Restarts of the VM's guest by this agent (since it started). */
  restarts (id: string): number {
    return this.total.get(id)?.count ?? 0
  }

  /** The guest of `vm` exited without being asked; `reason` is the driver's exit reason. */
  onExit (vm: VmRow, reason: string): void {
    this.schedule(vm, reason, vm.startedAt === null ? 0 : Math.max(0, this.clock() - vm.startedAt))
  }

  private schedule (vm: VmRow, reason: string, ranForMs: number): void {
    if (this.stopped) return
    const policy = vm.spec.restart
    const d = restartDecision({ policy, reason, restartsInARow: this.inARow.get(vm.id) ?? 0, ranForMs })
    if (!d.restart) {
      this.deps.log.info('guest exited: not restarted', { vm: vm.id, name: vm.name, reason, why: d.why })
      return
    }
    this.inARow.set(vm.id, d.attempt)
    const exitedAt = vm.updatedAt
    clearTimeout(this.timers.get(vm.id))
    const timer = setTimeout(() => {
      this.timers.delete(vm.id)
      void this.restart(vm.id, exitedAt, d.why)
    }, d.delayMs)
    timer.unref()
    this.timers.set(vm.id, timer)
    this.deps.log.warn('guest exited: restarting it', { vm: vm.id, name: vm.name, reason, delayMs: d.delayMs, attempt: d.attempt })
  }

  /** Cancels pending restarts (the agent stops; guests it did not restart yet stay as they are). */
  stop (): void {
    this.stopped = true
    for (const t of this.timers.values()) clearTimeout(t)
    this.timers.clear()
  }

  /** Exposes `meshvirt_vm_restarts_total` in the agent's registry. */
  registerMetrics (registry: Registry): void {
    const total = this.total
    // eslint-disable-next-line no-new
    new Counter({
      name: 'meshvirt_vm_restarts_total',
      help: 'Times this host started a VM\'s guest again after it crashed or was killed from outside (restart policy), since the agent started',
      labelNames: ['vm', 'name'],
      registers: [registry],
      collect () {
        this.reset()
        for (const [vm, t] of total) this.inc({ vm, name: t.name }, t.count)
      }
    })
  }

  private async restart (id: string, exitedAt: number, why: string): Promise<void> {
    // Anything since the exit (the operator's start/stop/delete, a migration, a fence) decides instead.
    const unchanged = (): VmRow | undefined => {
      const vm = this.deps.vms.get(id)
      if (vm !== undefined && vm.updatedAt === exitedAt && ['crashed', 'stopped', 'failed'].includes(vm.state)) return vm
      this.deps.log.info('restart skipped: the VM changed since its guest exited', { vm: id, state: vm?.state })
      return undefined
    }
    const before = this.stopped ? undefined : unchanged()
    if (before === undefined) return
    if (this.deps.gate !== undefined && !await this.deps.gate(before).catch(() => true)) return
    const vm = this.stopped ? undefined : unchanged()
    if (vm === undefined) return
    try {
      const after = await this.deps.vms.start(id)
      const t = this.total.get(id) ?? { name: vm.name, count: 0 }
      t.count++
      this.total.set(id, t)
      const message = `started again: ${why}${after.state === 'fenced' ? ' (waits for its lease)' : ''}`
      this.deps.log.info('guest restarted', { vm: id, name: vm.name, state: after.state, restarts: t.count })
      this.deps.emit?.({ vmId: id, vmName: vm.name, vmEpoch: vm.epoch, message })
    } catch (err) {
      this.deps.log.warn('restart failed: trying again after the next back-off', { vm: id, name: vm.name, err: (err as Error).message })
      // The start failed (the VM is `failed` now): the next attempt waits the next back-off.
      const failed = this.deps.vms.get(id)
      if (failed?.state === 'failed') this.schedule(failed, 'crashed', 0)
    }
  }
}
