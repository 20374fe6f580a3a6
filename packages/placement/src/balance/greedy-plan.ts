import { assumePlaced, assumeRemoved } from '../assume-placed.js'
import type { BalanceHost, BalanceMove, BalanceOptions } from './balance-types.js'
import { bestMove, measure } from './best-move.js'
import { BALANCE_DEFAULTS } from './constants.js'

/** An offline plan: the moves in order, the spread before and after, and the hosts as they would end. */
export interface BalancePlan {
  moves: BalanceMove[]
  meanBefore: number
  cvBefore: number
  cvAfter: number
  /** Utilisation of each host taking part, after the plan. */
  after: Map<string, number>
  hosts: BalanceHost[]
  /** True when the plan stopped at `maxMoves` rather than at balance. */
  truncated: boolean
}

/** Above this many moves a plan is cut short (a bound on work, not a balance rule). */
export const MAX_PLAN_MOVES = 10_000

/**
 * The offline greedy plan (the dry run, and the benchmark's baseline): with a full view and no
 * delay, repeatedly take the best move of any host above the threshold (the one that lowers the
 * spread most) until no host is above it or no move pays. Each move is applied to the hosts —
 * resources, groups and VM lists — before the next is chosen.
 */
export function greedyPlan (hosts: readonly BalanceHost[], options: BalanceOptions = BALANCE_DEFAULTS, maxMoves = MAX_PLAN_MOVES): BalancePlan {
  const first = measure(hosts, options.cpuWeight)
  let current = [...hosts]
  const moves: BalanceMove[] = []
  let truncated = false
  for (;;) {
    const state = measure(current, options.cpuWeight)
    let best: BalanceMove | undefined
    for (const h of state.parts) {
      const u = state.utilisation.get(h.snapshot.id) ?? 0
      if (!(u - state.mean > options.threshold)) continue
      const r = bestMove(current, h.snapshot.id, options, state)
      if (r.move !== undefined && (best === undefined || r.move.cvAfter < best.cvAfter)) best = r.move
    }
    if (best === undefined) break
    if (moves.length >= maxMoves) { truncated = true; break }
    moves.push(best)
    current = applyMove(current, best.vmId, best.from, best.to)
  }
  const last = measure(current, options.cpuWeight)
  return { moves, meanBefore: first.mean, cvBefore: first.cv, cvAfter: last.cv, after: last.utilisation, hosts: current, truncated }
}

/** The hosts once `vmId` has moved from `from` to `to` (inputs untouched). Unknown VM or host: unchanged. */
export function applyMove (hosts: readonly BalanceHost[], vmId: string, from: string, to: string): BalanceHost[] {
  const source = hosts.find((h) => h.snapshot.id === from)
  const vm = source?.vms.find((v) => v.id === vmId)
  if (source === undefined || vm === undefined || !hosts.some((h) => h.snapshot.id === to)) return [...hosts]
  const request = { ...vm.request, seed: vm.id }
  return hosts.map((h) => {
    if (h.snapshot.id === from) return { snapshot: assumeRemoved(h.snapshot, request), vms: h.vms.filter((v) => v.id !== vmId) }
    if (h.snapshot.id === to) return { snapshot: assumePlaced(h.snapshot, request), vms: [...h.vms, vm] }
    return h
  })
}
