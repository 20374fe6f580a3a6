import { hostCapacityFromWire, type ClusterView } from '@meshvirt/mesh'
import { NO_RESOURCES, placeVm, toPlacementExplanation, type HostCapacity, type HostSnapshot, type PlacementResult } from '@meshvirt/placement'
import { pb, type meshvirt } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'
import type { Logger } from '../log/logger.js'
import type { LoadReport } from '../util/adaptive-limit.js'
import type { AgentEvents } from '../util/agent-events.js'
import { specResources } from '../vm/vm-spec.js'
import { vmSpecToWire, type VmSpec } from '../vm/vm-spec-codec.js'
import { askUntilAnswered } from './commit-confirm.js'
import { HostRefusals } from './host-refusals.js'
import { toHostSnapshot } from './host-snapshot.js'
import type { PeerClient } from './peer-client.js'
import { placementRequestFor } from './placement-request.js'

/** Reserves tried per ranking before re-ranking with what the refusals taught us. */
export const RESERVES_PER_ROUND = 3
/** Bound on the whole negotiation: a placement never loops forever against a moving cluster. */
export const MAX_RESERVE_ATTEMPTS = 24
export const RESERVATION_TTL_MS = 10_000
/**
 * A Reserve answered slower than this tells the broker's limit that hosts are congested, as a
 * time-out does. A Reserve is ~1 ms of work at the host; 50 ms means it waited behind a long queue.
 */
export const RESERVE_SLOW_MS = 50
/** How long a placement waits before looking again when only in-flight reservations hold the room. */
const RESERVATION_WAIT_MS = 250
/** How long a broker keeps asking the host it committed on for the answer while that host is not dead (commit-confirm.ts). */
export const COMMIT_CONFIRM_MS = 30_000

/** How one placement went, for metrics and benchmarks. */
export interface PlacementTiming {
  /** From this broker's first Reserve to the Reserved answer that won. */
  reserveMs: number
  /** From the start of negotiation (after waiting for a slot) to Committed. */
  commitMs: number
  attempts: number
  refusals: number
}

export interface BrokerStats {
  placed: number
  failed: number
  attempts: number
  refusals: number
  /** Refusals by the reason the host gave (insufficient-memory, draining, …). */
  refusedBy: Record<string, number>
  unreachable: number
}

export interface NegotiationDeps {
  selfId: string
  view: ClusterView
  peers: PeerClient
  log: Logger
  reservationTtlMs?: number
  /** Where each committed placement is announced (placement:done): metrics and benchmarks follow it. */
  events?: AgentEvents
  /** The broker's counters, which every negotiation adds to. */
  stats: BrokerStats
}

/** What the ranking says to do next. */
type Next = { do: 'ask', ranking: PlacementResult } | { do: 'wait' } | { do: 'give-up', ranking: PlacementResult }

/**
 * One VM's placement (docs/design.md, "Create"): rank the hosts of this agent's view, ask the best
 * to Reserve, fall back along the ranking (folding the fresh capacity every refusal carries into
 * the view), re-rank, and commit on the first Reserved. The chosen host has the last word; a stale
 * view costs a retry, never an overcommit. Used once.
 */
export class PlacementNegotiation {
  /** Capacities fresher than the view's, from refusals. */
  private readonly fresher = new Map<string, HostCapacity>()
  /** Hosts skipped this round (no answer, too busy, a failed commit). */
  private readonly unreachable = new Set<string>()
  /**
   * Hosts whose own check refused this VM (its group rules, its driver): the view cannot know
   * what they know, so asking them again this placement would only be refused again.
   */
  private readonly refusedBy = new HostRefusals()
  private readonly wire: meshvirt.v1.IVmSpec
  private readonly started = performance.now()
  private readonly deadline: number
  private firstReserve: number | undefined
  private refusals = 0
  private attempts = 0

  constructor (private readonly deps: NegotiationDeps, private readonly spec: VmSpec, private readonly vmId: string, private readonly key: string, private readonly load: LoadReport) {
    this.wire = vmSpecToWire(spec)
    this.deadline = Date.now() + 2 * this.ttlMs
  }

  async run (): Promise<meshvirt.v1.IVmInfo> {
    let last: PlacementResult | undefined
    for (let round = 0; this.attempts < MAX_RESERVE_ATTEMPTS; round++) {
      const next = this.next(round)
      if (next.do === 'wait') {
        await new Promise((resolve) => setTimeout(resolve, RESERVATION_WAIT_MS))
        continue
      }
      last = next.ranking
      if (next.do === 'give-up') break
      for (const candidate of last.candidates.slice(0, RESERVES_PER_ROUND)) {
        if (this.attempts >= MAX_RESERVE_ATTEMPTS) break
        const placed = await this.tryHost(candidate.hostId, last)
        if (placed !== undefined) return placed
      }
    }
    const why = last === undefined || last.chosen !== undefined
      ? `gave up after ${this.attempts} reservation attempts (every candidate refused or failed)`
      : last.summary
    this.deps.stats.failed++
    throw this.refusedBy.error(this.spec.name, why, this.attempts)
  }

  private get ttlMs (): number {
    return this.deps.reservationTtlMs ?? RESERVATION_TTL_MS
  }

  /** Ranks the hosts; when none fits now, whether waiting may still find one. */
  private next (round: number): Next {
    const entries = this.deps.view.hosts().filter((h) => !this.unreachable.has(h.hostId))
    const request = this.refusedBy.exclude(placementRequestFor(this.spec, `${this.key}/${round}`))
    const rank = (adjust: (h: typeof entries[number]) => HostSnapshot): PlacementResult => placeVm(request, entries.map(adjust))
    let ranking = rank((h) => toHostSnapshot(h, this.fresher.get(h.hostId)))
    if (ranking.chosen === undefined && entries.some((h) => h.liveness === 'suspect')) {
      // Nothing alive fits, but suspect hosts may just be slow (missed heartbeats under load):
      // their own ledger decides, and a dead one costs one Reserve timeout before it is skipped.
      ranking = rank((h) => toHostSnapshot(h.liveness === 'suspect' ? { ...h, liveness: 'alive' } : h, this.fresher.get(h.hostId)))
    }
    if (ranking.chosen !== undefined) return { do: 'ask', ranking }
    if (Date.now() >= this.deadline) return { do: 'give-up', ranking }
    if (rank((h) => withoutReservations(toHostSnapshot(h, this.fresher.get(h.hostId)))).chosen !== undefined) {
      // Nothing is free, but reservations (other placements in flight) hold enough: they
      // commit or expire within their TTL. Wait for them rather than refuse while room remains.
      this.unreachable.clear()
      this.fresher.clear()
      return { do: 'wait' }
    }
    // Hosts too loaded to check the VM in time may have room: back off, then ask them again.
    // Or only other members' reservations stood in the way: they commit, lapse or are released.
    if (this.refusedBy.anyBusy() || this.refusedBy.retryHeld()) {
      this.unreachable.clear()
      return { do: 'wait' }
    }
    return { do: 'give-up', ranking }
  }

  /** Reserve on `host`, then commit there; the VM, or undefined to try the next candidate. */
  private async tryHost (host: string, ranking: PlacementResult): Promise<meshvirt.v1.IVmInfo | undefined> {
    const { peers, log, stats } = this.deps
    const attempt = ++this.attempts
    stats.attempts++
    this.firstReserve ??= performance.now()
    const requestId = `${this.vmId}/${attempt}`
    const askedAt = performance.now()
    let res: meshvirt.v1.NegotiateResponse
    try {
      res = await peers.negotiate(host, { reserve: { requestId, brokerId: this.deps.selfId, resources: specResources(this.spec), ttlMs: this.ttlMs, spec: this.wire } })
    } catch (err) {
      log.debug('reserve failed, trying the next host', { vm: this.vmId, peer: host, err: (err as Error).message })
      this.unreachable.add(host)
      stats.unreachable++
      this.load.congested()
      // The answer may be lost, not the reservation: give it back rather than hold it for its TTL.
      void peers.negotiate(host, { release: { requestId } }).catch(() => {})
      return undefined
    }
    if (res.refused != null) {
      this.refused(host, res.refused)
      return undefined
    }
    const reservedAt = performance.now()
    // A slow answer is congestion too, not only a missing one: the hosts' queues are long, so
    // fewer placements at once get the same work done with short ones (docs/benchmarks.md).
    if (reservedAt - askedAt > RESERVE_SLOW_MS) this.load.congested()
    const token = res.reserved?.token ?? ''
    const placement = toPlacementExplanation(ranking, attempt, host)
    try {
      // Commit is idempotent per VM id: a lost answer is asked again, never sent elsewhere
      // (the VM may exist there already; placing it on another host would make two).
      const committed = await this.confirmCommit(host, { token, vmId: this.vmId, spec: this.wire, placement, idempotencyKey: this.key })
      log.info('vm placed', { vm: this.vmId, name: this.spec.name, peer: host, attempts: attempt })
      stats.placed++
      this.deps.events?.emit('placement:done', { reserveMs: reservedAt - (this.firstReserve ?? reservedAt), commitMs: performance.now() - this.started, attempts: attempt, refusals: this.refusals })
      return { summary: committed.committed?.vm, spec: this.wire, placement, createdAtMs: Date.now() }
    } catch (err) {
      const code = (err as ControlError).code
      if (code === 'UNAVAILABLE') {
        stats.failed++
        throw new ControlError('UNAVAILABLE', `host ${host.slice(-12)} did not confirm the commit of ${this.spec.name}; it may exist there: retry with the same idempotency key (${this.key}) to find out`, { maybeOwner: host })
      }
      await peers.negotiate(host, { release: { token } }).catch(() => {})
      if (code === 'INVALID_ARGUMENT') throw err
      log.warn('commit failed, trying the next host', { vm: this.vmId, peer: host, err: (err as Error).message })
      this.unreachable.add(host)
      return undefined
    }
  }

  private refused (host: string, refused: meshvirt.v1.IRefused): void {
    const { stats, log } = this.deps
    this.refusals++
    stats.refusals++
    const reason = refuseReasonName(refused.reason)
    stats.refusedBy[reason] = (stats.refusedBy[reason] ?? 0) + 1
    // A peer's capacity is validated like an advert's before it enters the view.
    const fresh = hostCapacityFromWire(refused.capacity)
    if (fresh !== undefined) this.fresher.set(host, fresh)
    this.refusedBy.note(host, refused.reason, refused.message ?? '')
    // Too busy to answer: the next host this round, this one again after a back-off.
    if (refused.reason === pb.RefuseReason.REFUSE_REASON_OVERLOADED) { this.unreachable.add(host); this.load.congested() }
    log.debug('reserve refused', { vm: this.vmId, peer: host, reason: refused.message })
  }

  /** The commit's answer from `host`, asked again while it is busy rather than gone (commit-confirm.ts). */
  private async confirmCommit (host: string, commit: meshvirt.v1.ICommit): Promise<meshvirt.v1.NegotiateResponse> {
    return await askUntilAnswered(async () => await this.deps.peers.negotiate(host, { commit }), {
      gone: () => (this.deps.view.get(host)?.liveness ?? 'dead') === 'dead',
      forMs: COMMIT_CONFIRM_MS,
      onRetry: (attempt, err) => { this.load.congested(); this.deps.log.info('a commit is not answered yet; asking again', { peer: host, vm: commit.vmId, attempt, err: err.message }) }
    })
  }
}

/** REFUSE_REASON_INSUFFICIENT_MEMORY → insufficient-memory (a metric label). */
function refuseReasonName (reason: number | null | undefined): string {
  const name = Object.entries(pb.RefuseReason).find(([, v]) => v === reason)?.[0] ?? 'REFUSE_REASON_UNSPECIFIED'
  return name.replace(/^REFUSE_REASON_/, '').toLowerCase().replace(/_/g, '-')
}

/** The host as it will be once its unexpired reservations commit elsewhere or expire. */
function withoutReservations (host: HostSnapshot): HostSnapshot {
  return { ...host, capacity: { ...host.capacity, reservations: NO_RESOURCES } }
}
