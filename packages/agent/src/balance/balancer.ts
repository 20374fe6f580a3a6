import type { BalanceSetting } from '@meshvirt/mesh'
import { bestMove, measure, type BalanceHost, type BalanceMove } from '@meshvirt/placement'
import type { Logger } from '../log/logger.js'
import type { EventDraft } from '../monitor/cluster-event.js'
import type { BalanceKnobs } from './balance-knobs.js'
import { BalanceGovernor, type GovernorStep } from './balance-governor.js'

export interface BalancerDeps {
  selfId: string
  knobs: BalanceKnobs
  setting: () => BalanceSetting
  /** The cluster now, from this host's view (its own VMs with their full rules). */
  view: () => BalanceHost[]
  /** Live-migrates `vmId` to `to` (the migrate path: reserve, tunnel, hand-over); throws on failure. */
  move: (vmId: string, to: string) => Promise<void>
  emit: (draft: EventDraft) => void
  log: Logger
  now?: () => number
}

export interface BalancerStats {
  rounds: number
  moves: number
  recommendations: number
  failures: number
}

/** What one round did (tests and the bench follow it). */
export interface RoundOutcome {
  step: GovernorStep | 'off'
  move?: BalanceMove
  /** Why no move, when it was time to act. */
  why?: string
}

/**
 * One host's balance loop (docs/design.md, "Rebalancing"): every round, compare this host's
 * utilisation with the cluster mean from gossip; after `holdMs` above the threshold, take the move
 * `bestMove` names — or, in recommend mode, tell it — then cool down. One move at a time per host.
 */
export class Balancer {
  readonly stats: BalancerStats = { rounds: 0, moves: 0, recommendations: 0, failures: 0 }
  private readonly governor: BalanceGovernor
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private readonly now: () => number

  constructor (private readonly deps: BalancerDeps) {
    this.governor = new BalanceGovernor(deps.knobs)
    this.now = deps.now ?? Date.now
  }

  start (): void {
    this.timer = setInterval(() => {
      this.round().catch((err: unknown) => { this.deps.log.warn('balance round failed', { err: (err as Error).message }) })
    }, this.deps.knobs.intervalMs)
    this.timer.unref()
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    await this.running
  }

  /** One round; a move it starts runs on (the next rounds see 'busy'). */
  async round (): Promise<RoundOutcome> {
    this.stats.rounds++
    const { knobs, selfId, log } = this.deps
    const mode = this.deps.setting().mode
    if (mode === 'off') { this.governor.reset(); return { step: 'off' } }
    const hosts = this.deps.view()
    const state = measure(hosts, knobs.cpuWeight)
    const mine = state.utilisation.get(selfId)
    const above = mine !== undefined && mine - state.mean > knobs.threshold
    const step = this.governor.step(this.now(), above)
    if (step !== 'act') return { step }
    const r = bestMove(hosts, selfId, knobs, state)
    if (r.move === undefined) {
      log.debug('above the cluster mean, but no move pays', { reason: r.why.reason })
      return { step, why: r.why.reason }
    }
    const move = r.move
    this.governor.begin()
    if (mode === 'recommend') {
      this.stats.recommendations++
      this.deps.emit({ kind: 'balance-recommended', vmId: move.vmId, vmName: move.vmName, subjectHostId: move.to, message: move.reason })
      log.info('balance: recommends a move', { vm: move.vmId, to: move.to, reason: move.reason })
      this.governor.end(this.now())
      return { step, move }
    }
    log.info('balance: moving a VM', { vm: move.vmId, to: move.to, reason: move.reason })
    this.running = this.deps.move(move.vmId, move.to).then(() => {
      this.stats.moves++
      this.deps.emit({ kind: 'vm-balanced', vmId: move.vmId, vmName: move.vmName, subjectHostId: move.to, message: move.reason })
    }, (err: unknown) => {
      this.stats.failures++
      const message = `${move.reason}; the migration failed: ${(err as Error).message}`
      this.deps.emit({ kind: 'balance-failed', vmId: move.vmId, vmName: move.vmName, subjectHostId: move.to, message })
      log.warn('balance: the move failed', { vm: move.vmId, to: move.to, err: (err as Error).message })
    }).finally(() => { this.governor.end(this.now()) })
    await this.running
    return { step, move }
  }
}
