import { FILTER_CHAIN, prepareFilters } from '../filters/filter-chain.js'
import { freeCapacity } from '../free-capacity.js'
import type { HostCheck } from '../host-filter.js'
import { assumeRemoved } from '../assume-placed.js'
import type { BalanceHost, BalanceMove, BalanceOptions, BalanceVm, BestMoveResult, NoMoveReason } from './balance-types.js'
import { BALANCE_DEFAULTS } from './constants.js'
import { fromSums, hostSize, hostUtilisation, takesPart, vmShare, type HostSize } from './utilisation.js'

/** A move must lower the spread by more than float noise, so that the spread is a strictly falling potential (no cycles). */
const CV_EPSILON = 1e-9

/** The cluster as the balancer measures it: who takes part, each one's utilisation and size, Σu and Σu². */
export interface BalanceState {
  hosts: readonly BalanceHost[]
  parts: BalanceHost[]
  utilisation: Map<string, number>
  sizes: Map<string, HostSize>
  s1: number
  s2: number
  mean: number
  cv: number
}

export function measure (hosts: readonly BalanceHost[], cpuWeight: number): BalanceState {
  const parts = hosts.filter((h) => takesPart(h.snapshot))
  const utilisation = new Map<string, number>()
  const sizes = new Map<string, HostSize>()
  let s1 = 0
  let s2 = 0
  for (const h of parts) {
    const u = hostUtilisation(h, cpuWeight)
    utilisation.set(h.snapshot.id, u)
    sizes.set(h.snapshot.id, hostSize(h.snapshot))
    s1 += u
    s2 += u * u
  }
  const { mean, cv } = fromSums(s1, s2, Math.max(1, parts.length))
  return { hosts, parts, utilisation, sizes, s1, s2, mean, cv }
}

interface Candidate { vm: BalanceVm, target: BalanceHost, fromAfter: number, toBefore: number, toAfter: number, gain: number, cvAfter: number }

/**
 * The one move that improves the balance most for host `sourceId`, or why there is none. The host
 * acts only above the mean by more than `threshold`; a move must narrow the gap between source and
 * target by at least `margin` and lower the cluster's spread (CV); the target must pass every
 * placement filter for the VM, judged against the view without the VM on its source. Pure: the
 * same hosts give the same answer (ties by VM id, then host id).
 */
export function bestMove (hosts: readonly BalanceHost[], sourceId: string, options: BalanceOptions = BALANCE_DEFAULTS, state: BalanceState = measure(hosts, options.cpuWeight)): BestMoveResult {
  const source = state.parts.find((h) => h.snapshot.id === sourceId)
  if (source === undefined) return no('NOT_ELIGIBLE', `host ${sourceId} takes no part in balancing: it is unknown, not alive or not active`)
  const name = hostName(source)
  const uS = state.utilisation.get(sourceId) ?? 0
  const excess = uS - state.mean
  if (!(excess > options.threshold)) {
    return no('WITHIN_THRESHOLD', `${name} at ${pct(uS)} is ${points(excess)} from the mean ${pct(state.mean)}, within the threshold of ${points(options.threshold)}`)
  }
  const sizeS = state.sizes.get(sourceId) as HostSize
  const n = state.parts.length
  const candidates: Candidate[] = []
  let pinned = 0
  for (const vm of source.vms) {
    if (vm.pinned !== undefined) { pinned++; continue }
    const aS = vmShare(vm, sizeS, options.cpuWeight)
    const fromAfter = uS - aS
    for (const target of state.parts) {
      const tid = target.snapshot.id
      if (tid === sourceId) continue
      const toBefore = state.utilisation.get(tid) ?? 0
      const toAfter = toBefore + vmShare(vm, state.sizes.get(tid) as HostSize, options.cpuWeight)
      const gain = (uS - toBefore) - Math.abs(fromAfter - toAfter)
      if (!(gain >= options.margin)) continue
      const s1 = state.s1 - aS + (toAfter - toBefore)
      const s2 = state.s2 - uS * uS + fromAfter * fromAfter - toBefore * toBefore + toAfter * toAfter
      const cvAfter = fromSums(s1, s2, n).cv
      if (!(cvAfter < state.cv - CV_EPSILON)) continue
      candidates.push({ vm, target, fromAfter, toBefore, toAfter, gain, cvAfter })
    }
  }
  const checks = new Map<string, HostCheck[]>()
  let refused = 0
  // Best first. Usually the first passes the filters: select the minimum a few times rather than
  // sort them all; past a few refusals, sort what is left.
  let sorted = false
  for (let left = candidates.length; left > 0; left--) {
    if (!sorted && refused >= 8) { candidates.length = left; candidates.sort((a, b) => better(a, b) ? 1 : better(b, a) ? -1 : 0); sorted = true }
    let bi = left - 1
    if (!sorted) for (let i = left - 2; i >= 0; i--) if (better(candidates[i] as Candidate, candidates[bi] as Candidate)) bi = i
    const c = candidates[bi] as Candidate
    candidates[bi] = candidates[left - 1] as Candidate
    let prepared = checks.get(c.vm.id)
    if (prepared === undefined) {
      const request = { ...c.vm.request, seed: c.vm.id, exclude: [sourceId] }
      // The VM judged as if it had left: a domain-scoped anti-affinity rule must not find it in its own way.
      const view = state.hosts.map((h) => h.snapshot.id === sourceId ? assumeRemoved(h.snapshot, request) : h.snapshot)
      prepared = prepareFilters(request, FILTER_CHAIN, view)
      checks.set(c.vm.id, prepared)
    }
    const t = c.target.snapshot
    const free = freeCapacity(t.capacity)
    if (prepared.some((check) => check(t, free) !== undefined)) { refused++; continue }
    return { move: toMove(c, source, uS, state) }
  }
  const movable = source.vms.length - pinned
  const detail = movable === 0
    ? `none of its ${source.vms.length} VMs may move${pinned > 0 ? ` (${pinned} pinned: --no-balance, not migratable or not running)` : ''}`
    : candidates.length === 0
      ? `no move of its ${movable} movable VMs narrows a gap by the margin of ${points(options.margin)} and lowers the spread`
      : `placement's filters refuse all ${refused} moves that would help`
  return no('NO_GAIN', `${name} at ${pct(uS)} is ${points(excess)} above the mean ${pct(state.mean)}, but ${detail}`)
}

function toMove (c: Candidate, source: BalanceHost, fromBefore: number, state: BalanceState): BalanceMove {
  const vmName = c.vm.name ?? c.vm.id
  const from = hostName(source)
  const to = hostName(c.target)
  const reason = `${from} at ${pct(fromBefore)} is ${points(fromBefore - state.mean)} above the mean ${pct(state.mean)}: ` +
    `${vmName} to ${to} (${pct(c.toBefore)} → ${pct(c.toAfter)}; ${from} → ${pct(c.fromAfter)}), spread (CV) ${state.cv.toFixed(3)} → ${c.cvAfter.toFixed(3)}`
  return {
    vmId: c.vm.id,
    vmName,
    from: source.snapshot.id,
    to: c.target.snapshot.id,
    fromBefore,
    fromAfter: c.fromAfter,
    toBefore: c.toBefore,
    toAfter: c.toAfter,
    mean: state.mean,
    cvBefore: state.cv,
    cvAfter: c.cvAfter,
    gain: c.gain,
    reason
  }
}

/** Lower spread after, then the larger gain, then by VM id and host id (a total order: the answer never depends on list order). */
function better (a: Candidate, b: Candidate): boolean {
  return a.cvAfter !== b.cvAfter ? a.cvAfter < b.cvAfter : a.gain !== b.gain ? a.gain > b.gain : a.vm.id !== b.vm.id ? a.vm.id < b.vm.id : a.target.snapshot.id < b.target.snapshot.id
}

function no (code: NoMoveReason['code'], reason: string): BestMoveResult {
  return { why: { code, reason } }
}

function hostName (h: BalanceHost): string {
  return h.snapshot.hostname !== undefined && h.snapshot.hostname !== '' ? h.snapshot.hostname : h.snapshot.id
}

export function pct (u: number): string {
  return `${(u * 100).toFixed(0)}%`
}

export function points (d: number): string {
  return `${(Math.abs(d) * 100).toFixed(0)} points`
}
