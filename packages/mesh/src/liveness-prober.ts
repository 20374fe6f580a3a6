/**
 * The I/O half of liveness. Probes (member-probe.ts; directly, dialling if needed) the suspects the ClusterView
 * names, every host whose connection to us drops, and, every `memberProbeIntervalMs`, one connected
 * host it has not heard from for that long (member probing: a host that falls silent drops no
 * connection). When a probe fails, folds this host's own suspicion into the view and publishes a
 * notice (once per suspicion) so that every other host suspects and probes it too. A stopped host
 * refuses the dial at once; a partitioned or hung one times out after `probeTimeoutMs`.
 *
 * A failed probe is only evidence if this host was responsive itself (Lifeguard's "local
 * health"): when its own event loop lags, its probes time out or abort mid-handshake against
 * healthy hosts, and reporting them started suspicion storms (measured: 50 hosts on one busy
 * core). Such a probe is inconclusive; other hosts' notices and the timeout still decide.
 */
import type { ClusterView } from './cluster-view.js'
import type { SuspicionNotice } from './suspicion-notice.js'
import type { MeshTiming } from './timing.js'
import { localLoopLagMs } from './loop-health.js'
import { ProbeRotation } from './probe-rotation.js'

/** Above this event-loop lag (p99 over the last second), a probe timeout proves nothing. */
export const MAX_LOOP_LAG_FOR_EVIDENCE_MS = 100

export interface LivenessProberInit {
  view: ClusterView
  /**
   * Asks `hostId` to answer (member-probe.ts: one frame each way on the request channel); resolves
   * when it did, throws when it did not by the time `signal` aborts or could not be reached.
   */
  probe: (hostId: string, signal: AbortSignal) => Promise<void>
  timing: Pick<MeshTiming, 'probeIntervalMs' | 'probeTimeoutMs' | 'heartbeatIntervalMs' | 'memberProbeIntervalMs'>
  /** The hosts this host has a connection to now: member probing pings only them (never dials). */
  connected: () => Iterable<string>
  /** Publishes a suspicion notice on the liveness topic. */
  report: (notice: SuspicionNotice) => void
  log: (fmt: string, ...args: unknown[]) => void
}

/** Ticks per probe interval: a suspect is declared dead at most this fraction late. */
const TICKS_PER_PROBE_INTERVAL = 4
/**
 * How many more times, a probe interval apart, a host whose connection dropped is probed while the
 * probes prove nothing (this host lagging). With the connection gone, member probing no longer
 * picks it, and the backup detector waits two heartbeats (30 s on a LAN, minutes at 1,000 hosts).
 */
export const INCONCLUSIVE_DISCONNECT_RETRIES = 30

export class LivenessProber {
  private timer: NodeJS.Timeout | undefined
  private memberTimer: NodeJS.Timeout | undefined
  private readonly rotation = new ProbeRotation()
  private memberProbing = false
  private stopped = false
  private readonly pending = new Set<NodeJS.Timeout>()
  /** `${hostId}/${incarnation}/${suspectSince}` of the suspicions this host already reported. */
  private readonly reported = new Set<string>()

  constructor (private readonly init: LivenessProberInit) {}

  start (): void {
    const { probeIntervalMs, heartbeatIntervalMs } = this.init.timing
    const tickMs = Math.max(10, Math.floor(Math.min(probeIntervalMs, heartbeatIntervalMs) / TICKS_PER_PROBE_INTERVAL))
    this.timer = setInterval(() => { this.tick() }, tickMs)
    const memberMs = this.init.timing.memberProbeIntervalMs
    if (memberMs > 0) this.memberTimer = setInterval(() => { void this.probeMember(memberMs) }, memberMs)
  }

  stop (): void {
    this.stopped = true
    clearInterval(this.timer)
    clearInterval(this.memberTimer)
    for (const t of this.pending) clearTimeout(t)
  }

  /**
   * A connection to `hostId` closed. Probe at once and once more a probe interval later: a
   * host shutting down may still answer the first probe while its listener closes.
   */
  onDisconnect (hostId: string): void {
    if (this.stopped || this.init.view.get(hostId)?.liveness !== 'alive') return
    void this.disconnectProbe(hostId, 0)
    this.after(this.init.timing.probeIntervalMs, () => { void this.disconnectProbe(hostId, INCONCLUSIVE_DISCONNECT_RETRIES) })
  }

  private after (ms: number, fn: () => void): void {
    if (this.stopped) return
    const t = setTimeout(() => {
      this.pending.delete(t)
      fn()
    }, ms)
    this.pending.add(t)
  }

  private tick (): void {
    for (const hostId of this.init.view.tick()) void this.probeSuspect(hostId)
  }

  private async probeSuspect (hostId: string): Promise<void> {
    const reachable = await this.ping(hostId)
    if (this.stopped) return
    this.init.view.probeResult(hostId, reachable)
    if (reachable === false) this.reportOnce(hostId)
  }

  /**
   * One protocol period of member probing: ping the next host of the rotation, among the hosts
   * this one is connected to, that has been quiet for `quietMs`. A host heard from lately (any
   * advert, relayed or not) is alive. Only connected hosts, so probing never dials (a noise
   * handshake each, at 10,000 hosts); every host keeps connections to ≥ targetPeers others, which
   * are the hosts that watch it. A failed ping is tried once more before it counts.
   */
  private async probeMember (quietMs: number): Promise<void> {
    if (this.stopped || this.memberProbing) return
    const now = Date.now()
    const quiet = new Set<string>()
    for (const id of this.init.connected()) {
      const h = this.init.view.get(id)
      if (h !== undefined && !h.self && h.liveness === 'alive' && now - h.lastHeardMs >= quietMs) quiet.add(id)
    }
    const hostId = this.rotation.pick(quiet)
    if (hostId === undefined) return
    this.memberProbing = true
    try {
      await this.confirm(hostId)
    } finally {
      this.memberProbing = false
    }
  }

  /**
   * Another host reported `hostId` and this one now suspects it. If connected to it, this host
   * checks for itself (two pings), as it would on a dropped connection, and reports too: a
   * silent host's other watchers confirm the first report, so every view reaches its expected
   * confirmations and the minimum timeout. Only connected hosts ask (≤ the suspect's connections,
   * not N); a suspect that answers refutes on its own.
   */
  onNotice (hostId: string): void {
    if (this.stopped) return
    let connected = false
    for (const id of this.init.connected()) if (id === hostId) { connected = true; break }
    if (connected) void this.confirm(hostId)
  }

  private async confirm (hostId: string): Promise<void> {
    if (await this.ping(hostId) !== false || this.stopped) return
    if (await this.ping(hostId) !== false || this.stopped) return
    this.reportOnce(hostId)
  }

  /** Probes a host whose connection dropped; `retries` more tries while the result proves nothing. */
  private async disconnectProbe (hostId: string, retries: number): Promise<void> {
    if (this.init.view.get(hostId)?.liveness !== 'alive') return
    const answered = await this.ping(hostId)
    if (this.stopped || answered === true) return
    if (answered === false) this.reportOnce(hostId)
    else if (retries > 0) this.after(this.init.timing.probeIntervalMs, () => { void this.disconnectProbe(hostId, retries - 1) })
  }

  /** Adds this host's own suspicion to the view and tells the cluster, once per suspicion. */
  private reportOnce (hostId: string): void {
    const view = this.init.view
    const entry = view.get(hostId)
    if (entry === undefined || entry.liveness === 'dead') return
    const notice: SuspicionNotice = {
      hostId,
      incarnation: entry.advert.incarnation,
      seq: entry.advert.seq,
      reporterId: view.selfId,
      sentAtMs: Date.now()
    }
    view.suspect(notice)
    const key = `${hostId}/${entry.advert.incarnation}/${view.get(hostId)?.livenessSinceMs ?? 0}`
    if (this.reported.has(key)) return
    this.reported.add(key)
    if (this.reported.size > 10_000) this.reported.clear()
    this.init.report(notice)
  }

  /** true: answered; false: unreachable; undefined: failed while this host was lagging. */
  private async ping (hostId: string): Promise<boolean | undefined> {
    const started = performance.now()
    try {
      await this.init.probe(hostId, AbortSignal.timeout(this.init.timing.probeTimeoutMs))
      return true
    } catch (err) {
      // On a lagging loop even "refused" is unreliable: dials abort mid-handshake with
      // encryption or muxer errors that look like a dead peer. A time-out that this host saw late
      // is its own lag, known at once (the monitor needs a second's window after it starts).
      const late = performance.now() - started - this.init.timing.probeTimeoutMs
      const lag = Math.max(localLoopLagMs(), late)
      this.init.log('probe of %s failed (local lag %d ms): %e', hostId, lag, err)
      return lag > MAX_LOOP_LAG_FOR_EVIDENCE_MS ? undefined : false
    }
  }
}
