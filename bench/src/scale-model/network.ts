/**
 * Links and CPUs. A copy of a message takes a one-way link latency (uniform in [lo, hi]); with
 * `loss`, each segment is lost with that probability. libp2p runs over TCP, so a loss is
 * normally a retransmission after Linux's minimum RTO (200 ms, doubling), not a lost message
 * ('retransmit'); 'drop' loses the message outright — the pessimistic case that exercises
 * gossipsub's IHAVE/IWANT repair and the suspicion paths.
 *
 * CPU: every host handles its inbound copies one at a time, first come first served (one
 * event loop). `cores` says how many loops run at once: 'per-host' (real hosts, one core
 * each), or a number shared by all hosts (the bench's N hosts in one Node process: 1; N agent
 * processes on this 2-core machine: 2). With shared cores, background work (timers,
 * gossipsub heartbeats, idle heartbeats) arrives as a Poisson stream of tasks of
 * `backgroundTaskMs` that fills the given utilisation; per host, the idle load is an M/D/1
 * wait drawn at each arrival (mean ρ·b / 2(1−ρ), Pollaczek–Khinchine).
 */
import type { Random } from './random.js'

export type LossMode = 'retransmit' | 'drop'

export interface LinkModel { latencyMs: [number, number], loss: number, lossMode: LossMode, rtoMs: number }

export class Network {
  constructor (private readonly link: LinkModel, private readonly rng: Random) {}

  /** Delay of one copy, or -1 when it is lost ('drop'). */
  delay (): number {
    const [lo, hi] = this.link.latencyMs
    let d = lo + (hi - lo) * this.rng.next()
    if (this.link.loss <= 0) return d
    let rto = this.link.rtoMs
    while (this.rng.next() < this.link.loss) {
      if (this.link.lossMode === 'drop') return -1
      d += rto
      rto *= 2
    }
    return d
  }

  /** A round trip (a ping: request and answer). */
  roundTrip (): number {
    const a = this.delay()
    const b = this.delay()
    return a < 0 || b < 0 ? -1 : a + b
  }
}

export interface CpuModel {
  cores: 'per-host' | number
  /** Shared cores: utilisation of the background stream (0–1 of all cores). Per host: of each host. */
  backgroundUtilisation: number
  backgroundTaskMs: number
}

export class Cpu {
  private readonly hostFree: Float64Array
  private readonly coreFree: Float64Array
  private nextBackground = 0
  /**
   * The loop monitor of loop-health.ts: a 10 ms timer records how late it fires (the backlog it
   * finds); lagMs is the p99 of the last completed 1 s window. Busy periods of the
   * shared cores are kept for the current window to compute those samples.
   */
  private windowStart = 0
  private busyFrom: number[] = []
  private busyTo: number[] = []
  private lastWindowP99 = 0
  busyMs = 0

  constructor (n: number, private readonly model: CpuModel, private readonly rng: Random) {
    this.hostFree = new Float64Array(n)
    this.coreFree = new Float64Array(model.cores === 'per-host' ? 0 : model.cores)
    this.nextBackground = this.backgroundGap()
  }

  /** Runs `costMs` of work for host `h` arriving at `t`; returns when it completes. */
  run (h: number, t: number, costMs: number): number {
    this.busyMs += costMs
    if (this.model.cores === 'per-host') {
      let start = Math.max(t, this.hostFree[h] as number)
      const rho = this.model.backgroundUtilisation
      if (rho > 0 && this.rng.next() < rho) start += this.rng.exp(this.model.backgroundTaskMs / (2 * (1 - rho)))
      this.hostFree[h] = start + costMs
      return start + costMs
    }
    this.runBackgroundUntil(t)
    const c = this.earliestCore()
    const start = Math.max(t, this.hostFree[h] as number, this.coreFree[c] as number)
    this.noteBusy(start, start + costMs)
    this.coreFree[c] = this.hostFree[h] = start + costMs
    return start + costMs
  }

  /** p99 event-loop lag as loop-health.ts reports it: of the last completed second. */
  lagMs (t: number): number {
    if (this.model.cores !== 'per-host') this.runBackgroundUntil(t)
    this.rollWindow(t)
    return this.lastWindowP99
  }

  private runBackgroundUntil (t: number): void {
    if (this.model.backgroundUtilisation <= 0) return
    while (this.nextBackground <= t) {
      const c = this.earliestCore()
      const start = Math.max(this.nextBackground, this.coreFree[c] as number)
      // Background tasks vary in size (exponential, mean backgroundTaskMs).
      const size = this.rng.exp(this.model.backgroundTaskMs)
      this.noteBusy(start, start + size)
      this.coreFree[c] = start + size
      this.nextBackground += this.backgroundGap()
    }
  }

  private backgroundGap (): number {
    const cores = typeof this.model.cores === 'number' ? this.model.cores : 1
    const rate = this.model.backgroundUtilisation * cores / this.model.backgroundTaskMs
    return rate > 0 ? this.rng.exp(1 / rate) : Infinity
  }

  private earliestCore (): number {
    let best = 0
    for (let i = 1; i < this.coreFree.length; i++) if ((this.coreFree[i] as number) < (this.coreFree[best] as number)) best = i
    return best
  }

  private noteBusy (from: number, to: number): void {
    this.rollWindow(from)
    const last = this.busyTo.length - 1
    if (last >= 0 && from <= (this.busyTo[last] as number)) this.busyTo[last] = Math.max(this.busyTo[last] as number, to)
    else { this.busyFrom.push(from); this.busyTo.push(to) }
  }

  private rollWindow (t: number): void {
    while (t >= this.windowStart + 1000) {
      const end = this.windowStart + 1000
      const samples: number[] = []
      let i = 0
      // A 10 ms interval timer: it fires late by the backlog it finds, then re-arms.
      for (let tau = this.windowStart; tau < end;) {
        while (i < this.busyTo.length && (this.busyTo[i] as number) <= tau) i++
        const late = i < this.busyTo.length && (this.busyFrom[i] as number) <= tau ? (this.busyTo[i] as number) - tau : 0
        samples.push(late)
        tau += late + 10
      }
      samples.sort((a, b) => a - b)
      this.lastWindowP99 = samples[Math.ceil(0.99 * samples.length) - 1] as number
      // Keep only busy periods that reach into the next window.
      const keepFrom: number[] = []
      const keepTo: number[] = []
      for (let j = 0; j < this.busyTo.length; j++) if ((this.busyTo[j] as number) > end) { keepFrom.push(this.busyFrom[j] as number); keepTo.push(this.busyTo[j] as number) }
      this.busyFrom = keepFrom
      this.busyTo = keepTo
      this.windowStart = end
    }
  }
}
