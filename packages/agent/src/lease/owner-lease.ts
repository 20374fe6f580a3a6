/**
 * The owner's side of one VM's lease: renewal rounds, the lease they prove, the fence when it runs
 * out and the resume when a majority comes back at the same epoch. Pure: time and messages come in,
 * messages and effects go out (see lease-table.ts for the protocol as a whole).
 *
 * The lease counts from the *send* instant of a round: grants for round r prove the member received
 * it after r was sent. With one grant time per member (the latest round it granted) and the owner's
 * own vote at its latest round, the lease starts at the majority-th latest of those instants, so
 * grants of different rounds add up and a lost answer costs nothing once a later one arrives.
 */
import { majority, ownerInstants, type LeaseTiming } from './lease-timing.js'
import type { LeaseAnswerMessage, LeaseEffect, LeaseOutcome, LeaseState, PersistedLease, RequestVote, Renew } from './types.js'

/** The guest as the owner's lease sees it: running; stopped by the lease (resumes with it); stopped by the agent. */
export type OwnedGuest = 'running' | 'fenced' | 'stopped'

export interface OwnerLeaseInit {
  selfId: string
  vmId: string
  epoch: number
  /** The group: every host, this one included, in the order Renew carries it (owner first). */
  members: string[]
  timing: LeaseTiming
  now: number
  guest: OwnedGuest
  /** Just elected: the first time the lease is held, start the guest from this host's replica (`promote`). */
  promote?: boolean
  /**
   * After an agent restart with the guest still running: the fence instant the previous agent had
   * proven (its watchdog's deadline). The guest may run until then, exactly as it would have under
   * the previous agent, while renewals prove the lease anew; without it a restart fences at once.
   */
  provenFenceAt?: number
}

/** What the owner hands over when it learns it is no longer the owner. */
export interface StepDown {
  /** The state it keeps as a member: epoch and winner (owner '' when no winner is known). */
  state: PersistedLease
  /** Handle the message again as a member (a Renew it must grant, a RequestVote it may answer). */
  redispatch: boolean
}

export class OwnerLease {
  readonly role = 'owner'
  readonly vmId: string
  readonly epoch: number
  private readonly selfId: string
  private readonly t: LeaseTiming
  private group: string[]
  /** The group before a membership change, until a round after the change has a majority of both. */
  private previous: string[] | undefined
  private changeRound = 0
  private round = 0
  private readonly rounds = new Map<number, number>()
  private readonly grants = new Map<string, number>()
  private leaseFrom = -Infinity
  /** A lease start inherited from the previous agent (provenFenceAt), until renewals prove a later one. */
  private inherited = -Infinity
  /** The proof held when the group last changed (it stands, unextended, while the change is proven). */
  private atChange = -Infinity
  private nextRenewAt: number
  private guest: OwnedGuest
  private held = false
  private reportedFenceAt = -Infinity
  private promoting: boolean
  /** When this host became the owner: a new owner is not "lapsed" before it could have renewed. */
  private readonly since: number
  /** The highest epoch heard of (refusals, candidates), not known to have a winner. */
  private seenEpoch = 0
  /** A live migration hands the VM to this host at epoch + 1: every renewal says so from now on. */
  private handoverTo: string | undefined

  constructor (init: OwnerLeaseInit) {
    this.selfId = init.selfId
    this.vmId = init.vmId
    this.epoch = init.epoch
    this.t = init.timing
    this.group = withSelfFirst(init.members, init.selfId)
    this.guest = init.guest
    this.nextRenewAt = init.now
    this.promoting = init.promote === true
    this.since = init.now
    if (init.provenFenceAt !== undefined && init.provenFenceAt > init.now) this.inherited = init.provenFenceAt - this.t.fenceAfterMs
    this.leaseFrom = this.proven()
  }

  /**
   * The agent's view of the guest. `running` after `vm start` (the agent starts a replicated guest
   * only while the lease is held); `down`: it died while meant to run, or waits to be started, so
   * the lease resumes it;
   * `stopped` on purpose (from running). A fenced guest stays fenced whatever the agent reports:
   * it resumes with the lease.
   */
  observe (guest: 'running' | 'down' | 'stopped'): void {
    if (guest === 'running' && this.guest === 'stopped') this.guest = 'running'
    // Down while meant to run: it died, or the operator started a stopped guest that waits for the
    // lease (`vm start` of a replicated VM): either way the lease resumes it while held.
    else if (guest === 'down' && (this.guest === 'running' || this.guest === 'stopped')) this.guest = 'fenced'
    else if (guest === 'stopped' && this.guest === 'running') this.guest = 'stopped'
  }

  /** A new group (a holder replaced): until a round after the change has a majority of both, both count. */
  setMembers (members: string[]): void {
    const next = withSelfFirst(members, this.selfId)
    if (sameSet(next, this.group)) return
    this.atChange = this.leaseFrom
    this.previous = this.previous ?? this.group
    this.group = next
    this.changeRound = this.round + 1
    this.nextRenewAt = -Infinity
  }

  get members (): string[] { return [...this.group] }

  persisted (): PersistedLease {
    return { vmId: this.vmId, epoch: this.epoch, votedFor: this.selfId, owner: this.selfId, elected: true, members: this.members, ...(this.previous !== undefined ? { previousMembers: [...this.previous] } : {}) }
  }

  tick (now: number): LeaseEffect[] {
    const effects: LeaseEffect[] = []
    if (now >= this.nextRenewAt) {
      this.round += 1
      this.rounds.set(this.round, now)
      for (const [r, at] of this.rounds) if (at < now - this.t.leaseMs) this.rounds.delete(r)
      const renew: Renew = {
        type: 'renew', vmId: this.vmId, epoch: this.epoch, members: this.members, leaseMs: this.t.leaseMs, round: this.round,
        ...(this.handoverTo !== undefined ? { handover: { to: this.handoverTo, epoch: this.epoch + 1 } } : {})
      }
      for (const to of this.recipients()) effects.push({ type: 'send', to, message: renew })
      this.nextRenewAt = now + this.t.renewEveryMs
      this.leaseFrom = this.proven()
    }
    this.check(now, effects)
    return effects
  }

  /**
   * A live migration hands the VM to host `to` at epoch + 1: a renewal round at once, and every one
   * after it, tells the members, so that they take `to`'s renewals although it is not in their group.
   */
  handOver (to: string, now: number): LeaseEffect[] {
    this.handoverTo = to
    this.nextRenewAt = -Infinity
    return this.tick(now)
  }

  handle (from: string, msg: LeaseAnswerMessage | Renew | RequestVote, now: number): LeaseOutcome & { stepDown?: StepDown } {
    const effects: LeaseEffect[] = []
    const knowledge = { knownEpoch: this.epoch, owner: this.selfId, elected: true }
    switch (msg.type) {
      case 'granted': {
        const sentAt = msg.epoch === this.epoch ? this.rounds.get(msg.round) : undefined
        if (sentAt !== undefined && (this.grants.get(from) ?? -Infinity) < sentAt) this.grants.set(from, sentAt)
        this.leaseFrom = this.proven()
        break
      }
      case 'refused':
      case 'vote':
        if (msg.knownEpoch > this.epoch) {
          // While this lease holds, no election can have succeeded (lease-table.ts, invariant 1): a
          // newer owner named now, or one outside the group, is a lie or a mistake; ignore it.
          if (msg.elected && msg.owner !== '' && msg.owner !== this.selfId) {
            if (this.holds(now) || !this.inGroup(msg.owner)) break
            return this.stepDown(msg.knownEpoch, msg.owner, false, now, 'a newer owner was elected')
          }
          this.seenEpoch = Math.max(this.seenEpoch, msg.knownEpoch)
        }
        break
      case 'renew':
        if (msg.epoch > this.epoch) {
          // The same rule for a renewal at a higher epoch: only from the group, and only once this
          // owner's own lease has run out (a live migration never renews its source).
          if (!this.inGroup(from)) return { reply: { type: 'refused', vmId: this.vmId, epoch: msg.epoch, round: msg.round, reason: 'not-member', ...knowledge }, effects }
          if (this.holds(now)) return { reply: { type: 'refused', vmId: this.vmId, epoch: msg.epoch, round: msg.round, reason: 'owner-alive', ...knowledge }, effects }
          return this.stepDown(msg.epoch, from, true, now, 'renewed by a newer owner')
        }
        return { reply: { type: 'refused', vmId: this.vmId, epoch: msg.epoch, round: msg.round, reason: 'stale-epoch', ...knowledge }, effects }
      case 'request-vote':
        if (msg.epoch <= this.epoch) return { reply: { type: 'vote', vmId: this.vmId, epoch: msg.epoch, round: msg.round, granted: false, reason: 'stale-epoch', ...knowledge }, effects }
        if (!this.lapsed(now)) return { reply: { type: 'vote', vmId: this.vmId, epoch: msg.epoch, round: msg.round, granted: false, reason: 'owner-alive', ...knowledge }, effects }
        // Lapsed: it would step down at the real vote (and then answer as a holder).
        if (msg.preVote === true) return { reply: { type: 'vote', vmId: this.vmId, epoch: msg.epoch, round: msg.round, granted: true, ...knowledge }, effects }
        this.seenEpoch = Math.max(this.seenEpoch, msg.epoch - 1)
        return this.stepDown(Math.max(this.epoch, this.seenEpoch), '', true, now, `lease lapsed and ${from.slice(-8)} stands for epoch ${msg.epoch}`)
    }
    this.check(now, effects)
    // A lapsed owner that knows a newer epoch was promised cannot win its old one back: it steps down
    // so that the group can elect (itself included, as a holder of the freshest disk).
    if (this.seenEpoch > this.epoch && this.lapsed(now)) return this.stepDown(this.seenEpoch, '', false, now, `lease lapsed and epoch ${this.seenEpoch} was promised`)
    return { effects }
  }

  state (): LeaseState {
    const { expiresAt, fenceAt } = ownerInstants(this.t, this.leaseFrom)
    return { vmId: this.vmId, role: 'owner', epoch: this.epoch, owner: this.selfId, members: this.members, running: this.guest === 'running', expiresAt, fenceAt }
  }

  /** Whether the lease is proven now (the guest may run). */
  private holds (now: number): boolean {
    return now < this.leaseFrom + this.t.fenceAfterMs
  }

  private inGroup (host: string): boolean {
    return this.group.includes(host) || (this.previous?.includes(host) ?? false)
  }

  /** Whether the lease has lapsed by the election margin and the guest is not running: safe to let others elect. */
  private lapsed (now: number): boolean {
    return this.guest !== 'running' && now >= Math.max(this.leaseFrom, this.since) + this.t.ownerLeaseMs + this.t.electionMarginMs
  }

  private check (now: number, effects: LeaseEffect[]): void {
    const fenceAt = this.leaseFrom + this.t.fenceAfterMs
    const held = now < fenceAt
    if (held && fenceAt > this.reportedFenceAt) {
      this.reportedFenceAt = fenceAt
      effects.push({ type: 'renewed', vmId: this.vmId, epoch: this.epoch, fenceAt })
    }
    if (held !== this.held) {
      this.held = held
      effects.push(this.event(held ? 'lease-acquired' : 'lease-lost', now, held ? undefined : 'no majority renewed the lease in time'))
    }
    if (!held && this.guest === 'running') {
      this.guest = 'fenced'
      const reason = `lease not renewed by a majority of ${this.group.length} since ${Math.round(now - this.leaseFrom)} ms`
      effects.push({ type: 'fence', vmId: this.vmId, reason }, this.event('fenced', now, reason))
    } else if (held && this.guest === 'fenced') {
      this.guest = 'running'
      if (this.promoting) {
        this.promoting = false
        effects.push({ type: 'promote', vmId: this.vmId, epoch: this.epoch }, this.event('promoted', now, 'elected, and the first renewal at the new epoch has a majority'))
      } else {
        effects.push({ type: 'resume', vmId: this.vmId }, this.event('resumed', now, 'a majority renewed the lease at the same epoch'))
      }
    }
  }

  private stepDown (epoch: number, owner: string, redispatch: boolean, now: number, why: string): LeaseOutcome & { stepDown: StepDown } {
    const effects: LeaseEffect[] = []
    if (this.guest === 'running') {
      this.guest = 'fenced'
      effects.push({ type: 'fence', vmId: this.vmId, reason: why }, this.event('fenced', now, why))
    }
    const state: PersistedLease = { vmId: this.vmId, epoch, owner, elected: owner !== '', members: this.members }
    effects.push({ type: 'persist', state }, { type: 'demote', vmId: this.vmId, epoch, ...(owner !== '' ? { owner } : {}) }, this.event('demoted', now, `${why}; epoch ${epoch}${owner !== '' ? ` owned by ${owner}` : ''}`))
    return { effects, stepDown: { state, redispatch } }
  }

  /** The local instant the current grants prove a lease from (−∞: none). */
  private proven (): number {
    const from = this.provenFor(this.group)
    if (this.previous === undefined) return Math.max(from, this.inherited)
    const old = this.provenFor(this.previous)
    const changedAt = this.rounds.get(this.changeRound)
    if (changedAt !== undefined && from >= changedAt && old >= changedAt) this.previous = undefined
    // While the change is not proven by both groups, the proof the owner had *at the change* still
    // stands until its own end (it is not extended by the old group alone). Safe: a host that
    // learns the new group does so from a Renew sent after the change — also its first grant — and
    // votes only once that grant has lapsed (+ margin), after any lease that proof gives; the old
    // members' grants are what made the proof. Without this, every holder placed or replaced would
    // fence a healthy guest until the new members' first answers arrive.
    const proof = Math.max(Math.min(from, old), this.atChange)
    return Math.max(proof, this.inherited)
  }

  private provenFor (group: string[]): number {
    const own = this.rounds.get(this.round) ?? -Infinity
    const times = group.map((h) => (h === this.selfId ? Math.max(own, this.grants.get(h) ?? -Infinity) : this.grants.get(h) ?? -Infinity)).sort((a, b) => b - a)
    return times[majority(group.length) - 1] ?? -Infinity
  }

  private recipients (): string[] {
    const all = new Set([...this.group, ...(this.previous ?? [])])
    all.delete(this.selfId)
    return [...all]
  }

  private event (type: 'lease-acquired' | 'lease-lost' | 'fenced' | 'resumed' | 'promoted' | 'demoted', at: number, detail?: string): LeaseEffect {
    return { type: 'event', event: { type, vmId: this.vmId, epoch: this.epoch, at, ...(detail !== undefined ? { detail } : {}) } }
  }
}

function withSelfFirst (members: string[], self: string): string[] {
  return [self, ...new Set(members.filter((m) => m !== self))]
}

function sameSet (a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x))
}
