/**
 * The I/O half of liveness. Pings (directly, dialling if needed) the suspects the ClusterView
 * names and every host whose connection to us drops; when a probe fails, folds this host's own
 * suspicion into the view and publishes a notice (once per suspicion) so that every other host
 * suspects and probes it too. A stopped host refuses the dial at once; a partitioned one times
 * out after `probeTimeoutMs`.
 *
 * A failed probe is only evidence if this host was responsive itself (Lifeguard's "local
 * health"): when its own event loop lags, its probes time out or abort mid-handshake against
 * healthy hosts, and reporting them started suspicion storms (measured: 50 hosts on one busy
 * core). Such a probe is inconclusive; other hosts' notices and the timeout still decide.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { Ping } from '@libp2p/ping'
import type { ClusterView } from './cluster-view.js'
import type { SuspicionNotice } from './suspicion-notice.js'
import type { MeshTiming } from './timing.js'
import { localLoopLagMs } from './loop-health.js'

/** Above this event-loop lag (p99 over the last second), a probe timeout proves nothing. */
export const MAX_LOOP_LAG_FOR_EVIDENCE_MS = 100

export interface LivenessProberInit {
  view: ClusterView
  ping: Ping
  timing: Pick<MeshTiming, 'probeIntervalMs' | 'probeTimeoutMs' | 'heartbeatIntervalMs'>
  /** Publishes a suspicion notice on the liveness topic. */
  report: (notice: SuspicionNotice) => void
  log: (fmt: string, ...args: unknown[]) => void
}

/** Ticks per probe interval: a suspect is declared dead at most this fraction late. */
const TICKS_PER_PROBE_INTERVAL = 4

export class LivenessProber {
  private timer: NodeJS.Timeout | undefined
  private stopped = false
  private readonly pending = new Set<NodeJS.Timeout>()
  /** `${hostId}/${incarnation}/${suspectSince}` of the suspicions this host already reported. */
  private readonly reported = new Set<string>()

  constructor (private readonly init: LivenessProberInit) {}

  start (): void {
    const { probeIntervalMs, heartbeatIntervalMs } = this.init.timing
    const tickMs = Math.max(10, Math.floor(Math.min(probeIntervalMs, heartbeatIntervalMs) / TICKS_PER_PROBE_INTERVAL))
    this.timer = setInterval(() => { this.tick() }, tickMs)
  }

  stop (): void {
    this.stopped = true
    clearInterval(this.timer)
    for (const t of this.pending) clearTimeout(t)
  }

  /**
   * A connection to `hostId` closed. Probe at once and once more a probe interval later: a
   * host shutting down may still answer the first probe while its listener closes.
   */
  onDisconnect (hostId: string): void {
    if (this.stopped || this.init.view.get(hostId)?.liveness !== 'alive') return
    void this.disconnectProbe(hostId)
    const t = setTimeout(() => {
      this.pending.delete(t)
      void this.disconnectProbe(hostId)
    }, this.init.timing.probeIntervalMs)
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

  private async disconnectProbe (hostId: string): Promise<void> {
    if (this.init.view.get(hostId)?.liveness !== 'alive') return
    if (await this.ping(hostId) !== false || this.stopped) return
    this.reportOnce(hostId)
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
    try {
      await this.init.ping.ping(peerIdFromString(hostId), { signal: AbortSignal.timeout(this.init.timing.probeTimeoutMs) })
      return true
    } catch (err) {
      // On a lagging loop even "refused" is unreliable: dials abort mid-handshake with
      // encryption or muxer errors that look like a dead peer.
      const lag = localLoopLagMs()
      this.init.log('probe of %s failed (local lag %d ms): %e', hostId, lag, err)
      return lag > MAX_LOOP_LAG_FOR_EVIDENCE_MS ? undefined : false
    }
  }
}
