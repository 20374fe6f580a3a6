import { hostCapacityFromWire, type ClusterView } from '@meshvirt/mesh'
import { NO_RESOURCES, placeVm, toPlacementExplanation, type HostCapacity, type HostSnapshot, type PlacementResult } from '@meshvirt/placement'
import { pb, type meshvirt } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'
import type { Logger } from '../log/logger.js'
import { AdaptiveLimit, type LoadReport } from '../util/adaptive-limit.js'
import { specResources, validateVmSpec, vmIdFor } from '../vm/vm-spec.js'
import { vmSpecToWire, type VmSpec } from '../vm/vm-spec-codec.js'
import { toHostSnapshot } from './host-snapshot.js'
import { chooseCpuModel } from './cpu-model.js'
import { findGossipedVm } from './gossiped-vm.js'
import { NAME_AUTHORITIES, nameAuthorities, nameHolders } from './name-authority.js'
import { askUntilAnswered } from './commit-confirm.js'
import { placementRequestFor } from './placement-request.js'
import type { PeerClient } from './peer-client.js'
import { HostRefusals } from './host-refusals.js'
import type { AgentEvents } from '../util/agent-events.js'
import type { SpecClaims } from './spec-claims.js'

/** Reserves tried per ranking before re-ranking with what the refusals taught us. */
export const RESERVES_PER_ROUND = 3
/** Bound on the whole negotiation: a placement never loops forever against a moving cluster. */
export const MAX_RESERVE_ATTEMPTS = 24
export const RESERVATION_TTL_MS = 10_000
/** How long a name claim waits for its commit; a broker that dies frees the name after this. */
export const NAME_CLAIM_TTL_MS = 30_000
const SAME_REQUEST_POLL_MS = 200
/**
 * Placements this agent negotiates at once, at most; more wait their turn. The limit itself follows
 * the load (util/adaptive-limit.ts): a placement that met a peer too busy to answer in time halves
 * it, quiet ones grow it back. A storm of creates then queues at its brokers instead of flooding
 * every host with streams whose answers time out (docs/benchmarks.md, "Back-pressure at the broker").
 */
export const MAX_CONCURRENT_PLACEMENTS = 16
/**
 * A Reserve answered slower than this tells the broker's limit that hosts are congested, as a
 * time-out does. A Reserve is ~1 ms of work at the host; 50 ms means it waited behind a long queue.
 */
export const RESERVE_SLOW_MS = 50
/** The least it shrinks to: one placement at a time still makes progress. */
export const MIN_CONCURRENT_PLACEMENTS = 1
/** Congestion seen by the placements in flight together is one signal: the limit halves at most this often. */
const PLACEMENT_LIMIT_COOLDOWN_MS = 1000
/** How long a placement waits before looking again when only in-flight reservations hold the room. */
const RESERVATION_WAIT_MS = 250
/** How long a broker keeps asking the host it committed on for the answer while that host is not dead (commit-confirm.ts). */
export const COMMIT_CONFIRM_MS = 30_000
/** Rendezvous-ranked authorities tried for a name before giving up. */
const MAX_AUTHORITIES_TRIED = 4

export interface BrokerDeps {
  selfId: string
  view: ClusterView
  peers: PeerClient
  log: Logger
  reservationTtlMs?: number
  /** Where each committed placement is announced (placement:done): metrics and benchmarks follow it. */
  events?: AgentEvents
  /** What a VM's spec claims cluster-wide before placement (its NICs' addresses: the features'). */
  claims?: SpecClaims
}

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

export interface BrokerResult {
  vm: meshvirt.v1.IVmInfo
  /** True when an earlier request with the same idempotency key had already created it. */
  existed: boolean
}

/**
 * Brokers a VM creation from this agent: claims the name at its authority, ranks the hosts of
 * this agent's view, asks the best to Reserve, falls back along the ranking (folding the fresh
 * capacity every refusal carries into the view), re-ranks, and commits on the first Reserved.
 * The chosen host has the last word; a stale view costs a retry, never an overcommit.
 */
export class Broker {
  private readonly slots = new AdaptiveLimit({ min: MIN_CONCURRENT_PLACEMENTS, max: MAX_CONCURRENT_PLACEMENTS, cooldownMs: PLACEMENT_LIMIT_COOLDOWN_MS })
  readonly stats: BrokerStats = { placed: 0, failed: 0, attempts: 0, refusals: 0, refusedBy: {}, unreachable: 0 }

  constructor (private readonly deps: BrokerDeps) {}

  /** `spec` as read at the edge (the control API's create); checked here, before anything is claimed. */
  async create (spec: VmSpec, idempotencyKey: string): Promise<BrokerResult> {
    validateVmSpec(spec)
    return await this.slots.run(async (load) => await this.createNow(spec, idempotencyKey, load))
  }

  /** Placements negotiating now, waiting for a slot, and the limit between them (for /metrics). */
  get concurrency (): { running: number, queued: number, limit: number } {
    return { running: this.slots.running, queued: this.slots.queued, limit: this.slots.limit }
  }

  private async createNow (spec: VmSpec, idempotencyKey: string, load: LoadReport): Promise<BrokerResult> {
    const name = spec.name
    const vmId = vmIdFor(idempotencyKey)
    // A retry of a request that already made its VM: the id derives from the key, so the
    // gossiped VM summaries answer it without asking anyone.
    const made = findGossipedVm(this.deps.view, (v) => v.id === vmId)
    if (made !== undefined) {
      const info = await this.deps.peers.control(made.owner, { hops: 1, inspectVm: { vm: { id: vmId } } })
      return { vm: info.vm as meshvirt.v1.IVmInfo, existed: true }
    }
    const gossiped = findGossipedVm(this.deps.view, (v) => v.name === name)
    if (gossiped !== undefined) throw nameTaken(name, gossiped.id, gossiped.owner)

    const authorities = nameAuthorities(name, nameHolders(this.deps.view))
    if (authorities.length === 0) throw new ControlError('UNAVAILABLE', 'no alive host in this agent\'s view')
    const { claimedAt, existing } = await this.claimName(authorities, name, idempotencyKey, vmId, load)
    if (existing !== undefined) return existing

    const cpuModel = spec.cpuModel !== ''
      ? spec.cpuModel
      : chooseCpuModel(this.deps.view.hosts().filter((h) => h.liveness !== 'dead').map((h) => h.advert), !spec.notMigratable)
    spec = { ...spec, cpuModel }
    // What the spec claims cluster-wide (each NIC's address) is claimed before any host is asked: it moves with the VM.
    let hold: { claims: SpecClaims, held: unknown } | undefined
    try {
      if (this.deps.claims !== undefined) {
        const assigned = await this.deps.claims.assign(spec, vmId, idempotencyKey)
        spec = assigned.spec
        hold = { claims: this.deps.claims, held: assigned.held }
      } else if (spec.nics.length > 0) {
        throw new ControlError('INVALID_ARGUMENT', 'this agent has no networks: a VM with --net cannot be created through it')
      }
      const vm = await this.place(spec, vmId, idempotencyKey, load)
      await Promise.all([this.bindAt(claimedAt, { name, vmId, owner: vm.summary?.owner ?? '' }), hold?.claims.bind(hold.held)])
      return { vm, existed: false }
    } catch (err) {
      // A commit whose answer was lost may have happened: the name stays bound to that host, so a
      // retry asks it instead of placing the VM a second time elsewhere (issue 22, finding 1).
      const maybeOwner = (err as ControlError).details?.maybeOwner
      const maybe = maybeOwner !== undefined && maybeOwner !== ''
      await Promise.all([
        this.bindAt(claimedAt, maybe ? { name, vmId, owner: maybeOwner } : { name, vmId, release: true }),
        maybe ? hold?.claims.bind(hold.held) : hold?.claims.release(hold.held)
      ])
      throw err
    }
  }

  /** The commit's answer from `host`, asked again while it is busy rather than gone (commit-confirm.ts). */
  private async confirmCommit (host: string, commit: meshvirt.v1.ICommit, load: LoadReport): Promise<meshvirt.v1.NegotiateResponse> {
    return await askUntilAnswered(async () => await this.deps.peers.negotiate(host, { commit }), {
      gone: () => (this.deps.view.get(host)?.liveness ?? 'dead') === 'dead',
      forMs: COMMIT_CONFIRM_MS,
      onRetry: (attempt, err) => { load.congested(); this.deps.log.info('a commit is not answered yet; asking again', { peer: host, vm: commit.vmId, attempt, err: err.message }) }
    })
  }

  /** Binds (or frees) the name at every authority that holds this broker's claim, at once. */
  private async bindAt (authorities: string[], binding: meshvirt.v1.IBindName): Promise<void> {
    await Promise.all(authorities.map(async (authority) => {
      await this.deps.peers.negotiate(authority, { bindName: binding }).catch((err: unknown) => {
        this.deps.log.warn('could not bind the VM name at an authority', { vm: binding.vmId, name: binding.name, authority, release: binding.release === true, err: (err as Error).message })
      })
    }))
  }

  /**
   * Claims the name at the first NAME_AUTHORITIES reachable authorities, one after the other (in
   * the rendezvous order every broker uses, so two brokers meet at the first). Two, because the
   * first may die with what it knew: a retry whose view lost it finds the claim — and a binding to
   * the host a lost commit may have reached — at the second. Returns the VM already made when
   * this idempotency key made it before; otherwise the name is ours, held where `claimedAt` says.
   */
  private async claimName (authorities: string[], name: string, key: string, vmId: string, load: LoadReport): Promise<{ claimedAt: string[], existing?: BrokerResult }> {
    const claimedAt: string[] = []
    let lastError: unknown
    for (const authority of authorities.slice(0, MAX_AUTHORITIES_TRIED)) {
      if (claimedAt.length === NAME_AUTHORITIES) break
      try {
        const { existing } = await this.claimAt(authority, name, key, vmId, load)
        if (existing !== undefined) {
          // Made before: the authorities that granted this broker a claim learn where it runs.
          await this.bindAt(claimedAt, { name, vmId, owner: existing.vm.summary?.owner ?? '' })
          return { claimedAt, existing }
        }
        claimedAt.push(authority)
      } catch (err) {
        // Only the authority's own silence moves the claim on. An answer — the name is taken, or
        // bound to a host that does not answer now — is the name's state, and ends the create.
        if (!(err instanceof AuthorityUnreachable)) {
          await this.bindAt(claimedAt, { name, vmId, release: true })
          throw err
        }
        lastError = err.cause
        load.congested()
        this.deps.log.warn('name authority unreachable, trying the next', { name, authority, err: err.cause.message })
      }
    }
    if (claimedAt.length === 0) throw lastError
    return { claimedAt }
  }

  private async claimAt (authority: string, name: string, key: string, vmId: string, load: LoadReport): Promise<{ existing?: BrokerResult }> {
    const deadline = Date.now() + NAME_CLAIM_TTL_MS
    for (;;) {
      const res = await withRetries(async () => await this.deps.peers.negotiate(authority, { claimName: { name, idempotencyKey: key, vmId, brokerId: this.deps.selfId, ttlMs: NAME_CLAIM_TTL_MS } }), load)
        .catch((err: unknown) => { throw (err as ControlError).code === 'UNAVAILABLE' ? new AuthorityUnreachable(err as ControlError) : err })
      const claim = res.nameClaim
      if (claim == null) throw new ControlError('INTERNAL', 'name authority answered without a claim')
      if (claim.outcome === pb.NameClaim.Outcome.OUTCOME_GRANTED) return {}
      if (claim.outcome === pb.NameClaim.Outcome.OUTCOME_TAKEN) throw nameTaken(name, claim.vmId ?? '', claim.owner ?? '')
      // The same request, retried: answer with the VM it made, or wait for the broker still making it.
      const owner = claim.owner ?? ''
      if (owner !== '') {
        const found = await this.askOwner(owner, claim.vmId ?? vmId, name)
        if (found !== undefined) return { existing: found }
        // The host answered that it never committed it: the binding was only a guess, drop it.
        await this.deps.peers.negotiate(authority, { bindName: { name, vmId: claim.vmId ?? vmId, release: true } })
        continue
      }
      if (Date.now() > deadline) throw new ControlError('IN_PROGRESS', `another agent is still creating VM ${name} for this request; retry later`)
      await new Promise((resolve) => setTimeout(resolve, SAME_REQUEST_POLL_MS))
    }
  }

  /**
   * The VM this request made, asked of the host the name is bound to; undefined when that host
   * answers that it has no such VM. A host that does not answer may have it: never re-placed.
   */
  private async askOwner (owner: string, vmId: string, name: string): Promise<BrokerResult | undefined> {
    try {
      const info = await this.deps.peers.control(owner, { hops: 1, inspectVm: { vm: { id: vmId } } })
      return { vm: info.vm as meshvirt.v1.IVmInfo, existed: true }
    } catch (err) {
      if ((err as ControlError).code === 'NOT_FOUND') return undefined
      throw new ControlError('UNAVAILABLE', `VM ${name} may have been committed on host ${owner.slice(-12)} for this request, and that host does not answer: it is never placed a second time; it runs there when the host returns (meshvirt vm delete --force ${name} gives it up)`)
    }
  }

  private async place (spec: VmSpec, vmId: string, key: string, load: LoadReport): Promise<meshvirt.v1.IVmInfo> {
    const { peers, log } = this.deps
    const fresher = new Map<string, HostCapacity>()
    const unreachable = new Set<string>()
    // Hosts whose own check refused this VM (its group rules, its driver): the view cannot know
    // what they know, so asking them again this placement would only be refused again.
    const refusedBy = new HostRefusals()
    const resources = specResources(spec)
    const wire = vmSpecToWire(spec)
    const started = performance.now()
    let firstReserve: number | undefined
    let refusals = 0
    let attempts = 0
    const deadline = Date.now() + 2 * (this.deps.reservationTtlMs ?? RESERVATION_TTL_MS)
    let last: PlacementResult | undefined
    for (let round = 0; attempts < MAX_RESERVE_ATTEMPTS; round++) {
      const entries = this.deps.view.hosts().filter((h) => !unreachable.has(h.hostId))
      const request = refusedBy.exclude(placementRequestFor(spec, `${key}/${round}`))
      last = placeVm(request, entries.map((h) => toHostSnapshot(h, fresher.get(h.hostId))))
      if (last.chosen === undefined && entries.some((h) => h.liveness === 'suspect')) {
        // Nothing alive fits, but suspect hosts may just be slow (missed heartbeats under load):
        // their own ledger decides, and a dead one costs one Reserve timeout before it is skipped.
        last = placeVm(request, entries.map((h) => toHostSnapshot(h.liveness === 'suspect' ? { ...h, liveness: 'alive' } : h, fresher.get(h.hostId))))
      }
      if (last.chosen === undefined && Date.now() < deadline && placeVm(request, entries.map((h) => withoutReservations(toHostSnapshot(h, fresher.get(h.hostId))))).chosen !== undefined) {
        // Nothing is free, but reservations (other placements in flight) hold enough: they
        // commit or expire within their TTL. Wait for them rather than refuse while room remains.
        unreachable.clear()
        await new Promise((resolve) => setTimeout(resolve, RESERVATION_WAIT_MS))
        fresher.clear()
        continue
      }
      if (last.chosen === undefined && Date.now() < deadline && refusedBy.anyBusy()) {
        // Hosts too loaded to check the VM in time may have room: back off, then ask them again.
        unreachable.clear()
        await new Promise((resolve) => setTimeout(resolve, RESERVATION_WAIT_MS))
        continue
      }
      if (last.chosen === undefined && Date.now() < deadline && refusedBy.retryHeld()) {
        // Only other members' reservations stood in the way: they commit, lapse or are released.
        unreachable.clear()
        await new Promise((resolve) => setTimeout(resolve, RESERVATION_WAIT_MS))
        continue
      }
      if (last.chosen === undefined) break
      for (const candidate of last.candidates.slice(0, RESERVES_PER_ROUND)) {
        if (attempts >= MAX_RESERVE_ATTEMPTS) break
        attempts++
        this.stats.attempts++
        firstReserve ??= performance.now()
        const host = candidate.hostId
        let res: meshvirt.v1.NegotiateResponse
        const askedAt = performance.now()
        try {
          res = await peers.negotiate(host, { reserve: { requestId: `${vmId}/${attempts}`, brokerId: this.deps.selfId, resources, ttlMs: this.deps.reservationTtlMs ?? RESERVATION_TTL_MS, spec: wire } })
        } catch (err) {
          log.debug('reserve failed, trying the next host', { vm: vmId, peer: host, err: (err as Error).message })
          unreachable.add(host)
          this.stats.unreachable++
          load.congested()
          // The answer may be lost, not the reservation: give it back rather than hold it for its TTL.
          void peers.negotiate(host, { release: { requestId: `${vmId}/${attempts}` } }).catch(() => {})
          continue
        }
        if (res.refused != null) {
          refusals++
          this.stats.refusals++
          const reason = refuseReasonName(res.refused.reason)
          this.stats.refusedBy[reason] = (this.stats.refusedBy[reason] ?? 0) + 1
          // A peer's capacity is validated like an advert's before it enters the view.
          const fresh = hostCapacityFromWire(res.refused.capacity)
          if (fresh !== undefined) fresher.set(host, fresh)
          refusedBy.note(host, res.refused.reason, res.refused.message ?? '')
          // Too busy to answer: the next host this round, this one again after a back-off.
          if (res.refused.reason === pb.RefuseReason.REFUSE_REASON_OVERLOADED) { unreachable.add(host); load.congested() }
          log.debug('reserve refused', { vm: vmId, peer: host, reason: res.refused.message })
          continue
        }
        const reservedAt = performance.now()
        // A slow answer is congestion too, not only a missing one: the hosts' queues are long, so
        // fewer placements at once get the same work done with short ones (docs/benchmarks.md).
        if (reservedAt - askedAt > RESERVE_SLOW_MS) load.congested()
        const token = res.reserved?.token ?? ''
        const placement = toPlacementExplanation(last, attempts, host)
        try {
          // Commit is idempotent per VM id: a lost answer is asked again, never sent elsewhere
          // (the VM may exist there already; placing it on another host would make two).
          const committed = await this.confirmCommit(host, { token, vmId, spec: wire, placement, idempotencyKey: key }, load)
          log.info('vm placed', { vm: vmId, name: spec.name, peer: host, attempts })
          this.stats.placed++
          this.deps.events?.emit('placement:done', { reserveMs: reservedAt - (firstReserve ?? reservedAt), commitMs: performance.now() - started, attempts, refusals })
          return { summary: committed.committed?.vm, spec: wire, placement, createdAtMs: Date.now() }
        } catch (err) {
          const code = (err as ControlError).code
          if (code === 'UNAVAILABLE') {
            this.stats.failed++
            throw new ControlError('UNAVAILABLE', `host ${host.slice(-12)} did not confirm the commit of ${spec.name}; it may exist there: retry with the same idempotency key (${key}) to find out`, { maybeOwner: host })
          }
          await peers.negotiate(host, { release: { token } }).catch(() => {})
          if (code === 'INVALID_ARGUMENT') throw err
          log.warn('commit failed, trying the next host', { vm: vmId, peer: host, err: (err as Error).message })
          unreachable.add(host)
        }
      }
    }
    const why = last === undefined || last.chosen !== undefined
      ? `gave up after ${attempts} reservation attempts (every candidate refused or failed)`
      : last.summary
    this.stats.failed++
    throw refusedBy.error(spec.name, why, attempts)
  }
}

/** Claims are idempotent (same key, same answer), so a slow or lost answer is simply asked again. */
async function withRetries<T> (fn: () => Promise<T>, load: LoadReport, tries = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn()
    } catch (err) {
      if ((err as ControlError).code !== 'UNAVAILABLE' || i >= tries) throw err
      load.congested()
    }
  }
}

/** A name authority that did not answer a claim (as opposed to one that answered it). */
class AuthorityUnreachable extends Error {
  constructor (override readonly cause: ControlError) {
    super(cause.message)
  }
}

function nameTaken (name: string, vmId: string, owner: string): ControlError {
  return new ControlError('NAME_TAKEN', `a VM named ${name} already exists (${vmId}${owner !== '' ? ` on ${owner.slice(-12)}` : ', being created'}): choose another --name`, { vmId, owner })
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
