/**
 * The latest advert of every host and whether it is alive, as this host sees it. Pure: the
 * clock is injected and I/O stays outside — `tick()` names the suspects to probe, the shell
 * pings them and reports back with `probeResult()`.
 *
 * alive ──(no advert for suspectAfterHeartbeats (+ a slack < 1) × its heartbeat, or a peer's notice)──▶ suspect
 * suspect ──(probe answers, or a newer advert)──▶ alive (its reporters' notices then count alone no more for a while)
 * suspect ──(suspicion timeout; notices from other hosts and failed probes shorten it)──▶ dead
 * dead ──(newer advert, e.g. a restart with a new incarnation)──▶ alive
 * dead ──(deadRetentionMs)──▶ removed
 */
import { isNewer, type HostAdvert } from './host-advert.js'
import { MAX_TRACKED_REPORTERS, ReporterCredit, type ReporterCreditInit } from './reporter-credit.js'
import { remainingSuspicionTimeMs, suspicionTimeoutMs } from './suspicion.js'
import type { SuspicionNotice } from './suspicion-notice.js'
import { LAN_TIMING, type MeshTiming } from './timing.js'

export type Liveness = 'alive' | 'suspect' | 'dead'

export interface HostEntry {
  readonly hostId: string
  readonly advert: HostAdvert
  readonly liveness: Liveness
  /** Receiver's clock when the latest advert (or a probe answer) arrived. */
  readonly lastHeardMs: number
  /** Receiver's clock when `liveness` last changed. */
  readonly livenessSinceMs: number
  /** This host's own entry (always alive). */
  readonly self: boolean
}

export type ClusterViewEvent =
  | { type: 'joined', host: HostEntry }
  | { type: 'updated', host: HostEntry, previous: HostAdvert }
  | { type: 'suspect', host: HostEntry }
  | { type: 'dead', host: HostEntry }
  | { type: 'alive', host: HostEntry, previous: Liveness, restarted: boolean }
  | { type: 'removed', host: HostEntry }

export type ApplyOutcome = 'joined' | 'updated' | 'refreshed' | 'stale'

/**
 * What a suspicion notice did: `refute` — it is about this host, which must publish a newer
 * advert at once; `suspected` — a live host became suspect; `confirmed` — one more reporter
 * for a suspect; `ignored` — unknown or dead host, an older incarnation, or a reporter counted.
 */
export type SuspicionOutcome = 'refute' | 'suspected' | 'confirmed' | 'ignored'

export type ClusterViewTiming = Pick<MeshTiming, 'suspectAfterHeartbeats' | 'probeIntervalMs' | 'suspicionMult' |
'suspicionMaxTimeoutMult' | 'expectedConfirmations' | 'deadRetentionMs'>

export interface ClusterViewInit {
  selfId: string
  timing?: Partial<ClusterViewTiming>
  /** Milliseconds, monotonic enough for intervals; defaults to Date.now. */
  clock?: () => number
  /** When a refuted reporter's notices count again on their own (reporter-credit.ts). */
  credit?: ReporterCreditInit
  /** In [0, 1): draws each host's missed-heartbeat slack; defaults to Math.random (tests fix it). */
  random?: () => number
}

interface Entry {
  hostId: string
  advert: HostAdvert
  liveness: Liveness
  lastHeardMs: number
  livenessSinceMs: number
  self: boolean
  /** Distinct hosts that reported the suspect unreachable (this host included). */
  reporters: Set<string>
  failedProbes: number
  /** Whether this host probes the suspect: yes when the suspicion is its own (missed
   * heartbeats); no when it came from a notice — the suspect refutes, or the reporters'
   * confirmations decide (as in memberlist, so a notice does not make N hosts ping one). */
  probes: boolean
  lastProbeMs: number
  probing: boolean
  /** Reporters whose suspicions of this host it refuted: their notices alone do not count for a while. */
  credit: ReporterCredit
  /**
   * This host's own missed-heartbeat deadline is (suspectAfterHeartbeats + slack) heartbeats, slack
   * in [0, 1) drawn per host. Without it every host misses a silent host's heartbeat at the same
   * tick, probes it and publishes a notice: N notices, O(N²) deliveries (the scale model: 9,999 at
   * 10,000 hosts). Spread over a heartbeat, the first hosts' notices reach the rest before their
   * own deadline, and a host already suspecting on a notice does not probe or publish. The first
   * of N hosts still suspects ~hb / N after the two heartbeats.
   */
  slack: number
}

export class ClusterView {
  readonly selfId: string
  private readonly timing: ClusterViewTiming
  private readonly clock: () => number
  private readonly entries = new Map<string, Entry>()
  private readonly listeners = new Set<(event: ClusterViewEvent) => void>()
  private readonly credit: ReporterCreditInit
  private readonly random: () => number

  constructor (init: ClusterViewInit) {
    this.selfId = init.selfId
    this.credit = init.credit ?? {}
    this.random = init.random ?? Math.random
    this.timing = { ...LAN_TIMING, ...init.timing }
    this.clock = init.clock ?? Date.now
  }

  /** Calls `listener` for every event until the returned function is called. */
  subscribe (listener: (event: ClusterViewEvent) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  get (hostId: string): HostEntry | undefined {
    const e = this.entries.get(hostId)
    return e === undefined ? undefined : snapshot(e)
  }

  hosts (): HostEntry[] {
    return [...this.entries.values()].map(snapshot)
  }

  /** Hosts not declared dead (self included): the N of the log N in suspicion timeouts. */
  liveCount (): number {
    let n = 0
    for (const e of this.entries.values()) if (e.liveness !== 'dead') n++
    return n
  }

  /** True when an advert at (incarnation, seq) would not replace what the view holds. */
  isStale (hostId: string, incarnation: number, seq: number): boolean {
    const e = this.entries.get(hostId)
    return e !== undefined && !isNewer({ incarnation, seq }, e.advert)
  }

  /** Folds in a validated advert; the newer (incarnation, seq) wins. */
  apply (advert: HostAdvert): ApplyOutcome {
    const now = this.clock()
    const e = this.entries.get(advert.hostId)
    if (e === undefined) {
      const entry: Entry = {
        hostId: advert.hostId, advert, liveness: 'alive', lastHeardMs: now, livenessSinceMs: now,
        self: advert.hostId === this.selfId, reporters: new Set(), failedProbes: 0, probes: false, lastProbeMs: -Infinity, probing: false,
        credit: new ReporterCredit(this.credit), slack: this.random()
      }
      this.entries.set(advert.hostId, entry)
      this.emit({ type: 'joined', host: snapshot(entry) })
      return 'joined'
    }
    if (!isNewer(advert, e.advert)) return 'stale'
    const previous = e.advert
    const changed = !sameContent(previous, advert)
    e.advert = advert
    e.lastHeardMs = now
    if (changed) this.emit({ type: 'updated', host: snapshot(e), previous })
    if (e.liveness !== 'alive') this.revive(e, now, advert.incarnation > previous.incarnation)
    return changed ? 'updated' : 'refreshed'
  }

  /**
   * Advances liveness to `clock()`: alive hosts not heard for too long become suspect, suspects
   * whose timeout ran out become dead, long-dead hosts are removed. Returns the suspects due
   * for a direct probe (answer each with `probeResult`).
   */
  tick (): string[] {
    const now = this.clock()
    const n = this.liveCount()
    const probes: string[] = []
    for (const e of [...this.entries.values()]) {
      if (e.self) continue
      const hb = e.advert.heartbeatIntervalMs
      if (e.liveness === 'alive') {
        if (now - e.lastHeardMs <= (this.timing.suspectAfterHeartbeats + e.slack) * hb) continue
        this.becomeSuspect(e, now, true)
      }
      if (e.liveness === 'suspect') {
        const min = suspicionTimeoutMs(this.timing.suspicionMult, n, this.timing.probeIntervalMs)
        const max = min * this.timing.suspicionMaxTimeoutMult
        const confirmations = e.reporters.size + e.failedProbes
        const left = remainingSuspicionTimeMs(confirmations, this.timing.expectedConfirmations, now - e.livenessSinceMs, min, max)
        if (left <= 0) {
          this.setLiveness(e, 'dead', now)
          e.probing = false
          this.emit({ type: 'dead', host: snapshot(e) })
        } else if (e.probes && !e.probing && now - e.lastProbeMs >= this.timing.probeIntervalMs) {
          e.probing = true
          e.lastProbeMs = now
          probes.push(e.hostId)
        }
        continue
      }
      if (e.liveness === 'dead' && now - e.livenessSinceMs > this.timing.deadRetentionMs) {
        this.entries.delete(e.hostId)
        this.emit({ type: 'removed', host: snapshot(e) })
      }
    }
    return probes
  }

  /**
   * The answer to a probe `tick()` asked for: reachable refutes the suspicion, unreachable
   * confirms it, undefined (inconclusive: this host was too busy to judge) does neither.
   */
  probeResult (hostId: string, reachable: boolean | undefined): void {
    const e = this.entries.get(hostId)
    if (e === undefined) return
    e.probing = false
    if (e.liveness !== 'suspect' || reachable === undefined) return
    if (reachable) {
      const now = this.clock()
      e.lastHeardMs = now
      this.revive(e, now, false)
    } else {
      e.failedProbes++
    }
  }

  /** Folds in a validated notice (this host's own conclusions included, as reporter = self). */
  suspect (notice: SuspicionNotice): SuspicionOutcome {
    if (notice.hostId === this.selfId) return 'refute'
    const e = this.entries.get(notice.hostId)
    // A notice about an older incarnation is about a host that has restarted since; one about an
    // older seq comes from a reporter that had not heard what this host has heard since — the
    // suspect's refutation, or a later heartbeat. Taking it would make a host that already refuted
    // suspect again here, with nothing left to refute it before the timeout but its next heartbeat
    // (at 1,000 hosts and more that comes later than the timeout: the scale model found it).
    if (e === undefined || e.liveness === 'dead' || isNewer(e.advert, notice)) return 'ignored'
    if (e.liveness === 'alive') {
      // A reporter this host refuted lately does not make it suspect alone (reporter-credit.ts).
      const now = this.clock()
      if (notice.reporterId !== this.selfId && !e.credit.suspects(notice.reporterId, now)) return 'ignored'
      this.becomeSuspect(e, now, false)
      e.reporters.add(notice.reporterId)
      return 'suspected'
    }
    if (e.reporters.has(notice.reporterId) || e.reporters.size >= MAX_TRACKED_REPORTERS) return 'ignored'
    e.reporters.add(notice.reporterId)
    return 'confirmed'
  }

  private becomeSuspect (e: Entry, now: number, probes: boolean): void {
    this.setLiveness(e, 'suspect', now)
    e.reporters = new Set()
    e.failedProbes = 0
    e.probes = probes
    e.lastProbeMs = -Infinity
    this.emit({ type: 'suspect', host: snapshot(e) })
  }

  private revive (e: Entry, now: number, restarted: boolean): void {
    const previous = e.liveness
    // Heard again while suspect: the host refuted its reporters (this host's own probes excepted).
    if (previous === 'suspect') e.credit.refuted([...e.reporters].filter((r) => r !== this.selfId), now)
    this.setLiveness(e, 'alive', now)
    e.reporters = new Set()
    e.failedProbes = 0
    this.emit({ type: 'alive', host: snapshot(e), previous, restarted })
  }

  private setLiveness (e: Entry, liveness: Liveness, now: number): void {
    e.liveness = liveness
    e.livenessSinceMs = now
  }

  private emit (event: ClusterViewEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event)
      } catch {
        // A failing listener must not stop the view or the other listeners.
      }
    }
  }
}

function snapshot (e: Entry): HostEntry {
  return { hostId: e.hostId, advert: e.advert, liveness: e.liveness, lastHeardMs: e.lastHeardMs, livenessSinceMs: e.livenessSinceMs, self: e.self }
}

/** Equal apart from the fields every heartbeat changes. */
function sameContent (a: HostAdvert, b: HostAdvert): boolean {
  const strip = ({ seq: _s, sentAtMs: _t, ...rest }: HostAdvert): Omit<HostAdvert, 'seq' | 'sentAtMs'> => rest
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b))
}
