/**
 * Failure detection as packages/mesh does it, on top of the gossip model.
 *
 * - A killed host's connections reset: each connected peer probes it at once and once more a
 *   probe interval later (liveness-prober.ts `onDisconnect`); a failed probe is evidence only if
 *   the prober's loop lag (p99 over the last second) is ≤ 100 ms (`MAX_LOOP_LAG_FOR_EVIDENCE_MS`),
 *   else inconclusive. Evidence → `reportOnce`: the prober suspects it itself and floods one
 *   suspicion notice per suspicion (mesh-node.ts `report`, liveness topic).
 * - A notice makes a live host suspect without probing; later notices add reporters
 *   (cluster-view.ts `suspect`, probes = false: "a notice does not make N hosts ping one").
 * - The backup detector: a host not heard for suspectAfterHeartbeats × its advertised heartbeat
 *   becomes suspect at the next liveness tick *and is probed by that host* (cluster-view.ts
 *   `tick`, probes = true); each failed probe (timeout: a silent host does not refuse) counts as
 *   a confirmation and reports once.
 * - A suspect is dead at the first liveness tick (every min(probe, heartbeat)/4 = 250 ms,
 *   liveness-prober.ts TICKS_PER_PROBE_INTERVAL) once `remainingSuspicionTimeMs(reporters +
 *   failedProbes, expected, elapsed, min, max)` ≤ 0 (suspicion.ts), min = log10(N) × probe
 *   interval, max = 4 × min (timing.ts LAN).
 * - Member probing (liveness-prober.ts `probeMember`): every memberProbeIntervalMs each host pings
 *   the next host of its own shuffled round-robin among the hosts it is connected to and has not
 *   heard from for that long; two failed pings (a silent host times out twice) of a host still
 *   alive in its view → `reportOnce`. The victim's turn in a peer's round is uniform over the
 *   round's periods (one per connected host of that peer).
 * - A host connected to the suspect that hears a notice (and did not suspect it yet) pings it
 *   twice itself and reports too (liveness-prober.ts `onNotice`).
 * `backupDetectors` (a design variant, not the code): only that many monitors of each host run
 * the missed-heartbeat detector; the others wait for their notices.
 */
import { FIRST_EXTERNAL_KIND, type GossipSim } from './gossip.js'

export interface LivenessParams {
  probeIntervalMs: number
  probeTimeoutMs: number
  /** 0: no member probing (the rule before it). */
  memberProbeIntervalMs: number
  tickMs: number
  expectedConfirmations: number
  minTimeoutMs: number
  maxTimeoutMs: number
  remaining: (confirmations: number, expected: number, elapsedMs: number, minMs: number, maxMs: number) => number
  maxLagForEvidenceMs: number
  pingCostMs: number
  noticeBytes: number
  /** Notices propagated message by message; more are counted, not simulated (their load is reported). */
  maxSimulatedNotices: number
}

const DISCONNECT = FIRST_EXTERNAL_KIND
const PROBE_DONE = FIRST_EXTERNAL_KIND + 1
const CHECK = FIRST_EXTERNAL_KIND + 2
const OWN_DEADLINE = FIRST_EXTERNAL_KIND + 3
const PROBE = FIRST_EXTERNAL_KIND + 4
/** Two pings of a silent host (liveness-prober.ts `confirm`); b: 0 member probing, 1 on a notice. */
const PROBE_TWICE = FIRST_EXTERNAL_KIND + 5
const PROBE_TWICE_DONE = FIRST_EXTERNAL_KIND + 6

export interface DetectionResult {
  /** Last observer declaring the victim dead, ms after the failure (the bench's deadAllMs). */
  deadAllMs: number
  deadFirstMs: number
  suspectFirstMs: number
  suspectLastMs: number
  noticesPublished: number
  probesSent: number
  observers: number
  undetected: number
}

export class FailureDetector {
  private readonly suspectSince: Float64Array
  private readonly reporters: Int32Array
  private readonly failedProbes: Int32Array
  private readonly deadAt: Float64Array
  private readonly reported: Uint8Array
  private readonly tickPhase: Float64Array
  private readonly notices = new Set<number>()
  private victim = -1
  /** The victim's connected peers: they check it themselves on a notice. */
  private watchers = new Set<number>()
  private t0 = 0
  noticesPublished = 0
  probesSent = 0

  constructor (private readonly sim: GossipSim, private readonly p: LivenessParams) {
    const n = sim.topo.n
    this.suspectSince = new Float64Array(n).fill(NaN)
    this.reporters = new Int32Array(n)
    this.failedProbes = new Int32Array(n)
    this.deadAt = new Float64Array(n).fill(Infinity)
    this.reported = new Uint8Array(n)
    this.tickPhase = new Float64Array(n).map(() => sim.rng.uniform(0, p.tickMs))
    sim.external = (kind, a, b) => { this.handle(kind, a, b) }
    const previous = sim.onSeen
    sim.onSeen = (msg, host, t) => {
      previous?.(msg, host, t)
      if (this.notices.has(msg)) this.onNotice(host)
    }
  }

  /** SIGKILL (or stop): connections reset, every connected peer sees it after one link delay. */
  kill (victim: number, at: number): void {
    this.start(victim, at)
    for (const p of this.sim.topo.peers[victim] as number[]) {
      if (this.sim.dead[p] === 1) continue
      this.sim.q.push(at + Math.max(0, this.sim.net.delay()), DISCONNECT, p, 0)
      this.sim.q.push(at + this.p.probeIntervalMs, DISCONNECT, p, 1)
    }
  }

  /**
   * A silent failure (partition, hung host): no reset. `lastHeard[h]` is when h last processed
   * the victim's heartbeat; h suspects it at its first tick after lastHeard + `afterMs` + its
   * slack, uniform in [0, `slackMs`) per host (cluster-view.ts: a fraction of one heartbeat).
   * `detectors`: the hosts that run the backup detector (all, in the code).
   */
  silence (victim: number, at: number, lastHeard: Float64Array, afterMs: number, detectors: Iterable<number>, slackMs = 0): void {
    this.start(victim, at)
    for (const h of detectors) {
      if (h === victim || this.sim.dead[h] === 1) continue
      const slack = slackMs > 0 ? this.sim.rng.uniform(0, slackMs) : 0
      this.sim.q.push(this.nextTick(h, Math.max(at, (lastHeard[h] as number) + afterMs + slack)), OWN_DEADLINE, h)
    }
    const period = this.p.memberProbeIntervalMs
    if (period <= 0) return
    // Only the victim's connected peers probe it; each reaches it within one round of its own peers.
    for (const h of this.sim.topo.peers[victim] as number[]) {
      if (this.sim.dead[h] === 1) continue
      const quietFrom = Math.max(at, (lastHeard[h] as number) + period)
      const phase = this.sim.rng.uniform(0, period)
      const firstPeriod = phase + Math.ceil((quietFrom - phase) / period) * period
      const round = (this.sim.topo.peers[h] as number[]).length
      this.sim.q.push(firstPeriod + this.sim.rng.int(Math.max(1, round)) * period, PROBE_TWICE, h, 0)
    }
  }

  result (): DetectionResult {
    let deadAll = -Infinity; let deadFirst = Infinity; let sFirst = Infinity; let sLast = -Infinity; let observers = 0; let undetected = 0
    for (let h = 0; h < this.sim.topo.n; h++) {
      if (h === this.victim || this.sim.dead[h] === 1) continue
      observers++
      const d = this.deadAt[h] as number
      if (!Number.isFinite(d)) { undetected++; continue }
      deadAll = Math.max(deadAll, d); deadFirst = Math.min(deadFirst, d)
      const s = this.suspectSince[h] as number
      if (!Number.isNaN(s)) { sFirst = Math.min(sFirst, s); sLast = Math.max(sLast, s) }
    }
    return {
      deadAllMs: undetected > 0 ? Infinity : deadAll - this.t0, deadFirstMs: deadFirst - this.t0, suspectFirstMs: sFirst - this.t0, suspectLastMs: sLast - this.t0,
      noticesPublished: this.noticesPublished, probesSent: this.probesSent, observers, undetected
    }
  }

  private start (victim: number, at: number): void {
    this.victim = victim
    this.watchers = new Set(this.sim.topo.peers[victim])
    this.t0 = at
    this.sim.markDead(victim)
  }

  private handle (kind: number, h: number, b: number): void {
    if (this.sim.dead[h] === 1) return
    const now = this.sim.q.now
    const sim = this.sim
    switch (kind) {
      case DISCONNECT: {
        // disconnectProbe: only while the victim is still alive in this view.
        if (!Number.isNaN(this.suspectSince[h] as number) || Number.isFinite(this.deadAt[h] as number)) return
        this.probesSent++
        // A reset host refuses the dial: one round trip.
        const done = sim.cpu.run(h, now, this.p.pingCostMs) + Math.max(0, sim.net.roundTrip())
        sim.q.push(done, PROBE_DONE, h, 0)
        return
      }
      case OWN_DEADLINE:
        if (Number.isFinite(this.deadAt[h] as number)) return
        if (Number.isNaN(this.suspectSince[h] as number)) this.becomeSuspect(h, now)
        else return // already suspect by a notice: this host does not probe (probes = false)
        this.handle(PROBE, h, 0)
        return
      case PROBE: {
        if (Number.isFinite(this.deadAt[h] as number)) return
        this.probesSent++
        // A silent host never answers: the ping times out.
        sim.q.push(sim.cpu.run(h, now, this.p.pingCostMs) + this.p.probeTimeoutMs, PROBE_DONE, h, 1)
        return
      }
      case PROBE_TWICE:
        // b = 0, member probing: only a host still alive in this view; 1, on a notice: once per suspicion.
        if (Number.isFinite(this.deadAt[h] as number) || (b === 0 ? !Number.isNaN(this.suspectSince[h] as number) : this.reported[h] === 1)) return
        this.probesSent += 2
        sim.q.push(sim.cpu.run(h, now, 2 * this.p.pingCostMs) + 2 * this.p.probeTimeoutMs, PROBE_TWICE_DONE, h, b)
        return
      case PROBE_TWICE_DONE:
        if (Number.isFinite(this.deadAt[h] as number) || (b === 0 && !Number.isNaN(this.suspectSince[h] as number))) return
        if (sim.cpu.lagMs(now) > this.p.maxLagForEvidenceMs) return
        this.reportOnce(h)
        this.scheduleCheck(h)
        return
      case PROBE_DONE: {
        if (Number.isFinite(this.deadAt[h] as number)) return
        const conclusive = sim.cpu.lagMs(now) <= this.p.maxLagForEvidenceMs
        if (b === 1) {
          // probeResult: a failed probe of our own suspect confirms; then the next probe a probe interval on.
          if (conclusive) this.failedProbes[h] = (this.failedProbes[h] as number) + 1
          sim.q.push(this.nextTick(h, now - this.p.probeTimeoutMs + this.p.probeIntervalMs), PROBE, h)
        }
        if (conclusive) this.reportOnce(h)
        this.scheduleCheck(h)
        return
      }
      case CHECK: {
        if (Number.isFinite(this.deadAt[h] as number) || Number.isNaN(this.suspectSince[h] as number)) return
        if (this.left(h, now) <= 0) this.deadAt[h] = now
        else this.scheduleCheck(h)
      }
    }
  }

  private onNotice (h: number): void {
    if (this.sim.dead[h] === 1 || Number.isFinite(this.deadAt[h] as number)) return
    if (Number.isNaN(this.suspectSince[h] as number)) {
      this.becomeSuspect(h, this.sim.q.now)
      // liveness-prober.ts `onNotice`: a connected host checks for itself (two pings) and reports too.
      if (this.watchers.has(h)) this.handle(PROBE_TWICE, h, 1)
    }
    this.reporters[h] = (this.reporters[h] as number) + 1
    this.scheduleCheck(h)
  }

  private reportOnce (h: number): void {
    if (Number.isNaN(this.suspectSince[h] as number)) this.becomeSuspect(h, this.sim.q.now)
    if (this.reported[h] === 1) return
    this.reported[h] = 1
    this.reporters[h] = (this.reporters[h] as number) + 1
    this.noticesPublished++
    if (this.notices.size < this.p.maxSimulatedNotices) this.notices.add(this.sim.publish(h, this.sim.q.now, true, this.p.noticeBytes))
  }

  private becomeSuspect (h: number, now: number): void {
    this.suspectSince[h] = now
    this.reporters[h] = 0
    this.failedProbes[h] = 0
  }

  private left (h: number, now: number): number {
    const c = (this.reporters[h] as number) + (this.failedProbes[h] as number)
    return this.p.remaining(c, this.p.expectedConfirmations, now - (this.suspectSince[h] as number), this.p.minTimeoutMs, this.p.maxTimeoutMs)
  }

  private scheduleCheck (h: number): void {
    const now = this.sim.q.now
    this.sim.q.push(this.nextTick(h, now + Math.max(0, this.left(h, now))), CHECK, h)
  }

  private nextTick (h: number, t: number): number {
    const phase = this.tickPhase[h] as number
    return phase + Math.ceil((t - phase) / this.p.tickMs) * this.p.tickMs
  }
}
