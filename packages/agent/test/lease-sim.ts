/**
 * A deterministic simulation of one VM's lease group under faults, for lease-sim.spec.ts. Real time
 * is the event queue's; each host has its own clock (offset, and a rate within the drift bound) and
 * sees only that. The network loses, delays (with a long tail), duplicates and reorders messages,
 * and partitions form and heal; hosts crash (the guest dies with them) and restart with only what
 * they persisted (votes, promises, the agent's ownership record, the replica on disk).
 *
 * The agent around each LeaseTable is modelled as the hooks promise: a fence is over within
 * `maxFenceMs` of being due (timer lateness included), promote records the ownership before it
 * starts the guest, demote keeps it stopped. A guest counts as running from the instant its start
 * begins until its stop is over, so "never two running copies" is checked conservatively.
 */
import { LeaseTable } from '../src/lease/lease-table.js'
import { leaseTiming, type LeaseTiming, type LeaseTimingConfig } from '../src/lease/lease-timing.js'
import type { LeaseEffect, LeaseMessage, LeasePosition, PersistedLease } from '../src/lease/types.js'

export function mulberry32 (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Ev { at: number, seq: number, fn: () => void }

class EventQueue {
  private readonly heap: Ev[] = []
  private seq = 0
  push (at: number, fn: () => void): void {
    const h = this.heap
    h.push({ at, seq: this.seq++, fn })
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (less(h[p] as Ev, h[i] as Ev)) break
      ;[h[p], h[i]] = [h[i] as Ev, h[p] as Ev]
      i = p
    }
  }

  pop (): Ev | undefined {
    const h = this.heap
    const top = h[0]
    const last = h.pop()
    if (h.length > 0 && last !== undefined) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && less(h[l] as Ev, h[m] as Ev)) m = l
        if (r < h.length && less(h[r] as Ev, h[m] as Ev)) m = r
        if (m === i) break
        ;[h[m], h[i]] = [h[i] as Ev, h[m] as Ev]
        i = m
      }
    }
    return top
  }
}

const less = (a: Ev, b: Ev): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq)

export type Scenario = 'chaos' | 'owner-death' | 'owner-partition'

export interface SimResult {
  seed: number
  scenario: Scenario
  groupSize: number
  violations: string[]
  elections: number
  fences: number
  resumes: number
  demotes: number
  starts: number
  crashes: number
  partitions: number
  messages: number
  dropped: number
  duplicated: number
  maxEpoch: number
  /** From the stable phase's start (all faults over) to the guest running for good. */
  recoveryMs: number | undefined
  /** owner-death: from the owner's death to the guest starting elsewhere. */
  ownerDeathRecoveryMs: number | undefined
  /** The first owner's group grew (holders added) during the run: safety is checked, liveness is not. */
  grew: boolean
  /** A growing run that ended with no guest running (a known liveness gap, not a safety violation). */
  stuck: boolean
}

interface Host {
  id: string
  alive: boolean
  life: number
  rate: number
  offset: number
  table: LeaseTable
  durable: Map<string, PersistedLease>
  maxEpoch: number
  owned: { epoch: number } | undefined
  guest: 'running' | 'down' | 'stopped'
  running: boolean
  runningEpoch: number
  busyUntil: number
  position: LeasePosition | undefined
}

const VM = 'vm-sim'
/** Fault phase, then a stable phase (healed, no loss, crashed hosts back) in which liveness is checked. */
export const STABLE_AT_MS = 15_000
export const END_MS = 30_000
const TICK_MS = 25
const TICK_LATE_MS = 15
const POINT_EVERY_MS = 1000

export interface SimOptions {
  seed: number
  timing?: Partial<LeaseTimingConfig>
  /** Skips validation: to check that the simulation catches an unsafe protocol. */
  unsafeTiming?: LeaseTiming
  trace?: (line: string) => void
}

export function simulate (opts: SimOptions): SimResult {
  const rnd = mulberry32(opts.seed)
  const between = (a: number, b: number): number => a + (b - a) * rnd()
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)] as T
  const timing: LeaseTiming = opts.unsafeTiming ?? leaseTiming(opts.timing)
  const trace = opts.trace
  const q = new EventQueue()
  let now = 0

  const scenarioRoll = rnd()
  const scenario: Scenario = scenarioRoll < 0.6 ? 'chaos' : scenarioRoll < 0.85 ? 'owner-death' : 'owner-partition'
  const holders = 1 + Math.floor(rnd() * 4)
  const n = (holders + 1) % 2 === 0 ? holders + 2 : holders + 1
  const ids = Array.from({ length: n }, (_, i) => `h${i}`)
  const witness = n > holders + 1 ? ids[n - 1] : undefined
  const r: SimResult = {
    seed: opts.seed, scenario, groupSize: n, violations: [], elections: 0, fences: 0, resumes: 0, demotes: 0, starts: 0, crashes: 0,
    partitions: 0, messages: 0, dropped: 0, duplicated: 0, maxEpoch: 1, recoveryMs: undefined, ownerDeathRecoveryMs: undefined, grew: false, stuck: false
  }
  const violation = (what: string): void => { if (r.violations.length < 5) r.violations.push(`t=${now.toFixed(1)} ${what}`) }
  const log = (what: string): void => { trace?.(`${now.toFixed(1).padStart(8)} ${what}`) }

  // Network faults of the fault phase.
  let loss = pick([0, 0, 0.02, 0.1, 0.3])
  let longTail = pick([0, 0.01, 0.05])
  let dup = pick([0, 0.05])
  if (scenario !== 'chaos') { loss = Math.min(loss, 0.02); longTail = 0 }
  let side = new Map<string, number>(ids.map((id) => [id, 0]))
  const connected = (a: string, b: string): boolean => side.get(a) === side.get(b)

  const rate = (): number => { const u = rnd(); return 1 + timing.maxDrift * (u < 0.25 ? -1 : u < 0.5 ? 1 : 2 * rnd() - 1) }
  const hosts = new Map<string, Host>()
  const local = (h: Host): number => h.offset + h.rate * now
  const positionOf = (h: Host) => (vmId: string): LeasePosition | undefined => (vmId === VM ? h.position : undefined)
  const newTable = (h: Host, restarted: boolean): LeaseTable => new LeaseTable({
    selfId: h.id, timing, now: local(h), persisted: [...h.durable.values()], restarted, random: rnd, position: positionOf(h)
  })
  for (const id of ids) {
    const h: Host = {
      id, alive: true, life: 0, rate: rate(), offset: between(0, 1e6), table: undefined as unknown as LeaseTable, durable: new Map(), maxEpoch: 0,
      owned: id === 'h0' ? { epoch: 1 } : undefined, guest: 'down', running: false, runningEpoch: 0, busyUntil: 0,
      position: id === witness ? undefined : { epoch: 1, seq: 0, takenAt: 0 }
    }
    h.table = newTable(h, false)
    hosts.set(id, h)
  }
  const H = (id: string): Host => hosts.get(id) as Host

  // Liveness bookkeeping: how many guests run, and when the last one started.
  let lastStartAt = -1
  const startedBy = new Map<number, string>()
  const runningCount = (): number => [...hosts.values()].filter((h) => h.running).length

  const deliver = (from: string, to: string, msg: LeaseMessage): void => {
    r.messages++
    const send = (): void => {
      if (!connected(from, to) || rnd() < loss) { r.dropped++; if (trace !== undefined) log(`drop ${from} → ${to} ${msg.type}`); return }
      const delay = rnd() < longTail ? between(100, 3000) : between(0.2, 10)
      q.push(now + delay, () => {
        const dst = H(to)
        if (!dst.alive || !connected(from, to)) { r.dropped++; if (trace !== undefined) log(`lost ${from} → ${to} ${msg.type}`); return }
        const out = dst.table.handle(from, msg, local(dst))
        if (trace !== undefined && (msg.type === 'request-vote' || msg.type === 'vote')) log(`${from} → ${to} ${JSON.stringify(msg)}`)
        apply(dst, out.effects)
        if (out.reply !== undefined) deliver(to, from, out.reply)
      })
    }
    send()
    if (rnd() < dup) { r.duplicated++; send() }
  }

  const start = (h: Host, epoch: number, why: string): void => {
    const life = h.life
    const at = Math.max(now, h.busyUntil)
    h.busyUntil = at
    q.push(at, () => {
      if (!h.alive || h.life !== life) return
      if (h.running) return
      for (const o of hosts.values()) if (o !== h && o.running) violation(`${h.id} starts epoch ${epoch} (${why}) while ${o.id} still runs epoch ${o.runningEpoch}`)
      const by = startedBy.get(epoch)
      if (by !== undefined && by !== h.id) violation(`${h.id} starts epoch ${epoch}, which ${by} started`)
      startedBy.set(epoch, h.id)
      h.running = true
      h.guest = 'running'
      h.runningEpoch = epoch
      r.starts++
      lastStartAt = now
      log(`${h.id} guest starts, epoch ${epoch} (${why})`)
    })
  }

  const apply = (h: Host, effects: LeaseEffect[]): void => {
    for (const e of effects) {
      switch (e.type) {
        case 'send': deliver(h.id, e.to, e.message); break
        case 'persist':
          if (e.state.epoch < h.maxEpoch) violation(`${h.id} persisted epoch ${e.state.epoch} after ${h.maxEpoch}`)
          h.maxEpoch = Math.max(h.maxEpoch, e.state.epoch)
          r.maxEpoch = Math.max(r.maxEpoch, e.state.epoch)
          h.durable.set(e.state.vmId, { ...e.state })
          break
        case 'fence': {
          // Due now; over within maxFenceMs of the due instant, tick lateness included.
          const worst = timing.maxFenceMs - TICK_MS - TICK_LATE_MS - 1
          const took = rnd() < 0.3 ? worst : between(0, worst)
          const life = h.life
          const at = Math.max(now, h.busyUntil) + took
          h.busyUntil = at
          q.push(at, () => {
            if (!h.alive || h.life !== life || !h.running) return
            h.running = false
            h.guest = 'down'
            log(`${h.id} guest stopped (fence: ${e.reason})`)
          })
          break
        }
        case 'resume':
          if (h.owned === undefined) violation(`${h.id} resumes a VM it does not own`)
          else start(h, h.owned.epoch, 'resume')
          break
        case 'promote':
          if (h.owned !== undefined && h.owned.epoch >= e.epoch) violation(`${h.id} promoted to ${e.epoch} but owns ${h.owned.epoch}`)
          h.owned = { epoch: e.epoch }
          h.guest = 'running'
          start(h, e.epoch, 'promote')
          break
        case 'demote':
          h.owned = undefined
          break
        case 'event':
          if (e.event.type === 'elected') r.elections++
          else if (e.event.type === 'fenced') r.fences++
          else if (e.event.type === 'resumed') r.resumes++
          else if (e.event.type === 'demoted') r.demotes++
          log(`${h.id} ${e.event.type} epoch ${e.event.epoch}${e.event.detail !== undefined ? `: ${e.event.detail}` : ''}`)
          break
      }
    }
  }

  const tick = (h: Host, life: number): void => {
    if (!h.alive || h.life !== life) return
    const t = local(h)
    if (h.owned !== undefined) apply(h, h.table.own({ vmId: VM, epoch: h.owned.epoch, members: h.owned.epoch === 1 ? group : ids, guest: h.guest }, t))
    apply(h, h.table.tick(t))
    q.push(now + (TICK_MS + between(0, TICK_LATE_MS)) / h.rate, () => { tick(h, life) })
  }

  const crash = (h: Host): void => {
    if (!h.alive) return
    r.crashes++
    h.alive = false
    h.life++
    if (h.running) log(`${h.id} guest dies with its host`)
    h.running = false
    h.guest = 'down'
    h.busyUntil = 0
    log(`${h.id} crashes`)
  }
  const restart = (h: Host): void => {
    if (h.alive) return
    h.alive = true
    h.rate = rate()
    h.table = newTable(h, true)
    h.guest = 'down'
    log(`${h.id} restarts`)
    tick(h, h.life)
  }

  // Replication: the running owner takes a point every second and ships it to the holders.
  const points = (): void => {
    for (const h of hosts.values()) {
      if (!h.running || h.position === undefined) continue
      const p: LeasePosition = { epoch: h.runningEpoch, seq: h.position.seq + 1, takenAt: Math.round(now) }
      h.position = p
      for (const o of hosts.values()) {
        if (o === h || o.position === undefined || !connected(h.id, o.id) || rnd() < loss) continue
        q.push(now + between(5, 200), () => {
          const c = o.position as LeasePosition
          if (o.alive && connected(h.id, o.id) && (p.epoch > c.epoch || (p.epoch === c.epoch && p.seq > c.seq))) o.position = p
        })
      }
    }
    if (now + POINT_EVERY_MS < END_MS) q.push(now + POINT_EVERY_MS, points)
  }

  // Faults.
  const partition = (at: number, sides: Map<string, number>, healAt: number): void => {
    q.push(at, () => { side = sides; r.partitions++; log(`partition ${[...sides].map(([id, s]) => `${id}:${s}`).join(' ')}`) })
    q.push(healAt, () => { if (side === sides) { side = new Map(ids.map((id) => [id, 0])); log('partition healed') } })
  }
  // Membership changes: in some runs the first owner's group grows while it runs (holders placed one
  // by one after the VM was created), the change the agent makes whenever it places or replaces one.
  let group = ids
  if (rnd() < 0.3) {
    r.grew = true
    group = ids.slice(0, 1 + Math.floor(rnd() * (n - 1)))
    let at = 0
    for (let size = group.length + 1; size <= n; size++) {
      at += between(300, 3000)
      const next = ids.slice(0, size)
      q.push(at, () => { group = next; log(`group grows to ${next.join(',')}`) })
    }
  }
  let ownerDiedAt: number | undefined
  if (scenario === 'chaos') {
    const crashes = Math.floor(rnd() * 4)
    for (let i = 0; i < crashes; i++) {
      const h = H(pick(ids))
      const at = between(500, STABLE_AT_MS - 500)
      q.push(at, () => { crash(h) })
      q.push(Math.min(STABLE_AT_MS, at + between(200, 8000)), () => { restart(h) })
    }
    const parts = Math.floor(rnd() * 4)
    for (let i = 0; i < parts; i++) {
      const at = between(500, STABLE_AT_MS - 500)
      const isolate = rnd() < 0.5 ? pick(ids) : undefined
      partition(at, new Map(ids.map((id) => [id, isolate !== undefined ? (id === isolate ? 1 : 0) : Math.floor(rnd() * 2)])), Math.min(STABLE_AT_MS, at + between(300, 8000)))
    }
  } else if (scenario === 'owner-death') {
    ownerDiedAt = between(2000, 10_000)
    q.push(ownerDiedAt, () => { crash(H('h0')) })
  } else {
    const at = between(2000, 8000)
    partition(at, new Map(ids.map((id) => [id, id === 'h0' ? 1 : 0])), at + between(1000, 7000))
  }
  q.push(STABLE_AT_MS, () => {
    loss = 0; longTail = 0; dup = 0
    side = new Map(ids.map((id) => [id, 0]))
    for (const h of hosts.values()) if (scenario !== 'owner-death' || h.id !== 'h0') restart(h)
    log('stable phase')
  })

  for (const h of hosts.values()) q.push(between(0, TICK_MS), () => { tick(h, h.life) })
  q.push(POINT_EVERY_MS, points)
  let prevRunning = 0
  for (;;) {
    const ev = q.pop()
    if (ev === undefined || ev.at > END_MS) break
    now = ev.at
    ev.fn()
    const running = runningCount()
    if (running > 1) violation(`${running} guests run at once`)
    if (ownerDiedAt !== undefined && r.ownerDeathRecoveryMs === undefined && now > ownerDiedAt && running === 1 && prevRunning === 0) r.ownerDeathRecoveryMs = now - ownerDiedAt
    prevRunning = running
  }
  now = END_MS
  if (runningCount() !== 1) {
    // Hosts added while the owner was cut off never heard of the VM (only a Renew tells them), so a
    // group whose owner then stepped down may lack the majority to elect: a liveness gap, recorded.
    if (r.grew) r.stuck = true
    else violation(`no guest runs at the end (stable since ${STABLE_AT_MS} ms): liveness`)
  } else r.recoveryMs = Math.max(0, lastStartAt - STABLE_AT_MS)
  for (const h of hosts.values()) {
    const p = h.durable.get(VM)
    if (p !== undefined && p.epoch > r.maxEpoch) violation(`${h.id} epoch beyond max`)
  }
  return r
}
