/**
 * The balance loop of every host, simulated on a virtual clock (planner level): each host runs the
 * agent's own BalanceGovernor and placement's bestMove, from its own view — the other hosts as
 * gossip showed them `gossipDelayMs` ago, itself as it is — one live migration at a time, a
 * cool-down after. A migration lasts `migrateMs`; meanwhile the VM is listed by both hosts (the
 * destination's incoming row, counted at its allocation as the agent does before it measures it),
 * the destination's Reserve is checked against its true ledger, and at the end the VM leaves the
 * source and the new owner measures it at once (as the agent samples on vm:changed).
 */
import { BalanceGovernor, type BalanceKnobs } from '@meshvirt/agent'
import { addResources, bestMove, fitsWithin, freeCapacity, measure, subtractResources, type BalanceHost, type BalanceVm } from '@meshvirt/placement'

export interface SimOptions {
  knobs: BalanceKnobs
  gossipDelayMs: number
  migrateMs: number
  /** Once converged, go on this long and count the moves made in it (there should be none). */
  steadyMs: number
  maxMs: number
  /** Seeded phase of each host's rounds in [0, intervalMs). */
  phase: (hostIndex: number) => number
}

export interface SimResult {
  moves: number
  refused: number
  /** Virtual time of the last move before convergence (no host above the threshold, or nothing left to do). */
  convergeMs: number
  /** Whether it converged with every host within the threshold (false: it stopped because no move paid). */
  withinThreshold: boolean
  /** Moves in the steady window after convergence (should be 0). */
  steadyMoves: number
  endMs: number
  hosts: BalanceHost[]
  /** Moves of each VM (a VM moved twice or more is a sign of overshoot). */
  movedTwice: number
  rounds: number
}

interface Version { atMs: number, hosts: BalanceHost[] }
interface InFlight { vm: BalanceVm, from: string, to: string, endMs: number, steady: boolean }

export function simulateBalancing (initial: readonly BalanceHost[], o: SimOptions): SimResult {
  let current: BalanceHost[] = initial.map((h) => ({ snapshot: h.snapshot, vms: [...h.vms] }))
  const history: Version[] = [{ atMs: 0, hosts: current }]
  const governors = current.map(() => new BalanceGovernor(o.knobs))
  const index = new Map(current.map((h, i) => [h.snapshot.id, i]))
  const nextRound = current.map((_, i) => o.phase(i))
  const flights: InFlight[] = []
  const movedCount = new Map<string, number>()
  let moves = 0
  let refused = 0
  let rounds = 0
  let lastMoveMs = 0
  let lastActivityMs = 0
  let convergedAt: number | undefined
  let withinThreshold = false
  let steadyMoves = 0
  let now = 0
  const quietLimit = o.knobs.holdMs + o.knobs.cooldownMs + 2 * o.knobs.intervalMs
  if (!anyAbove(current, o.knobs)) { convergedAt = 0; withinThreshold = true }

  const publish = (hosts: BalanceHost[]): void => { current = hosts; history.push({ atMs: now, hosts }) }
  const seenAt = (t: number): BalanceHost[] => {
    let v = history[0] as Version
    for (let i = history.length - 1; i >= 0; i--) if ((history[i] as Version).atMs <= t) { v = history[i] as Version; break }
    return v.hosts
  }

  for (;;) {
    // Next event: a migration ending, or a host's round.
    let t = Infinity
    let who = -1
    for (const f of flights) if (f.endMs < t) { t = f.endMs; who = -2 }
    for (let i = 0; i < nextRound.length; i++) if ((nextRound[i] as number) < t) { t = nextRound[i] as number; who = i }
    now = t
    if (now > o.maxMs) break
    if (convergedAt !== undefined && now > convergedAt + o.steadyMs) break
    if (convergedAt === undefined && flights.length === 0 && now - lastActivityMs > quietLimit) convergedAt = lastMoveMs
    if (who === -2) {
      const f = flights.splice(flights.findIndex((x) => x.endMs === t), 1)[0] as InFlight
      publish(finish(current, f))
      movedCount.set(f.vm.id, (movedCount.get(f.vm.id) ?? 0) + 1)
      governors[index.get(f.from) as number]?.end(now)
      lastActivityMs = now
      if (f.steady) continue
      moves++
      lastMoveMs = now
      if (flights.length === 0 && !anyAbove(current, o.knobs)) { convergedAt = now; withinThreshold = true }
      continue
    }
    const i = who
    nextRound[i] = now + o.knobs.intervalMs
    rounds++
    const self = current[i] as BalanceHost
    const id = self.snapshot.id
    const view = seenAt(now - o.gossipDelayMs).map((h) => h.snapshot.id === id ? self : h)
    const state = measure(view, o.knobs.cpuWeight)
    const mine = state.utilisation.get(id) ?? 0
    const g = governors[i] as BalanceGovernor
    if (g.step(now, mine - state.mean > o.knobs.threshold) !== 'act') continue
    const r = bestMove(view, id, o.knobs, state)
    if (r.move === undefined) continue
    const move = r.move
    const vm = self.vms.find((v) => v.id === move.vmId) as BalanceVm
    const target = current[index.get(move.to) as number] as BalanceHost
    g.begin()
    // The destination's ledger decides on its true state (a stale view costs a refusal, never an overcommit).
    if (!fitsWithin(vm.request.resources, freeCapacity(target.snapshot.capacity))) { refused++; g.end(now); continue }
    publish(start(current, vm, id, move.to))
    lastActivityMs = now
    if (convergedAt !== undefined) steadyMoves++
    flights.push({ vm, from: id, to: move.to, endMs: now + o.migrateMs, steady: convergedAt !== undefined })
  }
  return {
    moves,
    refused,
    convergeMs: convergedAt ?? lastMoveMs,
    withinThreshold,
    steadyMoves,
    endMs: now,
    hosts: current,
    movedTwice: [...movedCount.values()].filter((n) => n > 1).length,
    rounds
  }
}

function anyAbove (hosts: readonly BalanceHost[], knobs: BalanceKnobs): boolean {
  const s = measure(hosts, knobs.cpuWeight)
  return [...s.utilisation.values()].some((u) => u - s.mean > knobs.threshold)
}

/** Reserve on the destination: its incoming row lists the VM (pinned while it arrives, counted at its allocation). */
function start (hosts: BalanceHost[], vm: BalanceVm, from: string, to: string): BalanceHost[] {
  const { usage: _notYetMeasured, ...incoming } = vm
  return hosts.map((h) => {
    if (h.snapshot.id === to) {
      return { snapshot: { ...h.snapshot, capacity: { ...h.snapshot.capacity, allocated: addResources(h.snapshot.capacity.allocated, vm.request.resources) } }, vms: [...h.vms, { ...incoming, pinned: 'it is migrating' }] }
    }
    if (h.snapshot.id === from) return { snapshot: h.snapshot, vms: h.vms.map((v) => v.id === vm.id ? { ...v, pinned: 'it is migrating' } : v) }
    return h
  })
}

/** Hand-over: the source frees the VM, the new owner runs and measures it. */
function finish (hosts: BalanceHost[], f: InFlight): BalanceHost[] {
  return hosts.map((h) => {
    if (h.snapshot.id === f.from) return { snapshot: { ...h.snapshot, capacity: { ...h.snapshot.capacity, allocated: subtractResources(h.snapshot.capacity.allocated, f.vm.request.resources) } }, vms: h.vms.filter((v) => v.id !== f.vm.id) }
    if (h.snapshot.id === f.to) return { snapshot: h.snapshot, vms: h.vms.map((v) => v.id === f.vm.id ? f.vm : v) }
    return h
  })
}
