/**
 * A member's side of one VM's lease (a holder, a witness, or an old owner that stepped down): it
 * grants the owner's renewals, votes, and, as a holder, stands for election when the owner's
 * grant has lapsed. Pure, like OwnerLease.
 *
 * Rules (the reasons are in lease-table.ts):
 * - Durable: the highest epoch known, the vote at that epoch, the owner and the group. Written (the
 *   `persist` effect) before the answer that depends on it leaves. Volatile: the grant's end, which
 *   means nothing after a restart, hence a quiet period of a whole lease after one.
 * - Renew at epoch ≥ known is granted unless this member voted for, or knows, another owner at that
 *   epoch. A grant lasts `leaseMs` from receipt on this host's clock.
 * - A higher epoch than known (or one whose owner it does not know) needs evidence that its sender
 *   may hold it (issue 22): the owner it knows handed the VM over to that host (migration), or the
 *   sender is in the group and this member's own grant has lapsed by the election margin — the
 *   condition under which it would vote, so no legitimate election can be refused by it for long,
 *   while a renewal from outside the group, or one that would unseat an owner still renewing, is
 *   refused (`not-member`, `lease-held`). A member with no state yet (the table vouched for the
 *   sender) takes the first renewal as it comes.
 * - A vote for epoch p > known (or = known with no vote cast and no owner confirmed) needs: the
 *   candidate in the group, no grant until `electionMarginMs` ago, no restart until a lease ago, and
 *   the candidate's (position, host id) above this member's own.
 * - A holder stands when it may vote, after a random jitter; a majority of votes (its own
 *   included) elects it at that epoch. A vote is not a grant (a lost election would otherwise block
 *   its voters for a lease): the winner starts the guest only once its first renewal at the new
 *   epoch has a majority, and a member that voted for a higher epoch meanwhile refuses that renewal.
 */
import { majority, type LeaseTiming } from './lease-timing.js'
import type { LeaseEffect, LeaseEventType, LeaseMessage, LeaseOutcome, LeasePosition, LeaseRefusal, LeaseState, PersistedLease, Renew, RequestVote, Vote } from './types.js'

export interface MemberLeaseInit {
  selfId: string
  timing: LeaseTiming
  state: PersistedLease
  now: number
  /** This host restarted: it may have granted and forgotten, so it stays quiet for a lease. */
  restarted: boolean
  random: () => number
  /** This host's replica position of the VM; undefined: not a holder (a witness never stands). */
  position: () => LeasePosition | undefined
  /** A hand-over this host made as the VM's owner (it may then be the new owner's witness). */
  handedOver?: { to: string, epoch: number }
}

/** What a won election hands to the new owner (which starts the guest once its first renewal has a majority). */
export interface Elected {
  epoch: number
  members: string[]
}

interface Candidacy {
  /** A pre-vote round: would a majority vote? Nothing promised yet. */
  pre: boolean
  epoch: number
  round: number
  votes: Set<string>
  deadline: number
  ask: RequestVote
}

export class MemberLease {
  readonly role = 'member'
  readonly vmId: string
  private readonly selfId: string
  private readonly t: LeaseTiming
  private readonly random: () => number
  private readonly position: () => LeasePosition | undefined
  private s: PersistedLease
  private grantedUntil = -Infinity
  /**
   * After a vote, other candidates wait until the winner could have renewed (liveness only: a
   * second election right behind the first would refuse the winner's first renewal).
   */
  private votedUntil = -Infinity
  private readonly quietUntil: number
  private notBefore = -Infinity
  private jitter: number
  private seenEpoch = 0
  /** A hand-over announced by the owner this member knows: `to` may renew at `epoch`. */
  private handedOver: { to: string, epoch: number } | undefined
  private round = 0
  private candidacy: Candidacy | undefined

  constructor (init: MemberLeaseInit) {
    this.selfId = init.selfId
    this.vmId = init.state.vmId
    this.t = init.timing
    this.random = init.random
    this.position = init.position
    this.s = { ...init.state, members: [...init.state.members] }
    this.quietUntil = init.restarted ? init.now + init.timing.restartQuietMs : -Infinity
    this.jitter = this.roll()
    if (init.handedOver !== undefined) this.handedOver = { ...init.handedOver }
  }

  get persisted (): PersistedLease { return { ...this.s, members: [...this.s.members] } }

  tick (now: number): LeaseOutcome & { elected?: Elected } {
    const effects: LeaseEffect[] = []
    const c = this.candidacy
    if (c !== undefined) {
      if (now >= c.deadline) this.lose(now, effects, `${c.votes.size} of ${majority(this.s.members.length)} ${c.pre ? 'pre-votes' : 'votes'} by the deadline`)
      return { effects }
    }
    if (!this.canStand(now)) return { effects }
    // Stand: first a pre-vote (nobody promises anything), so that a holder that cannot win — cut
    // off, or the owner still renews the others — does not raise epochs the others must then refuse.
    return this.ask(true, now, effects)
  }

  private ask (pre: boolean, now: number, effects: LeaseEffect[]): LeaseOutcome & { elected?: Elected } {
    const epoch = Math.max(this.s.epoch, this.seenEpoch) + 1
    const position = this.position()
    if (position === undefined) return { effects }
    if (!pre) {
      // The real vote: promise the epoch to itself first (durably), then ask the others.
      this.s = { ...this.s, epoch, votedFor: this.selfId, owner: this.selfId, elected: false }
      effects.push({ type: 'persist', state: this.persisted }, this.event('candidate', epoch, now, `position ${position.epoch}/${position.seq}`))
    }
    this.round += 1
    const ask: RequestVote = { type: 'request-vote', vmId: this.vmId, epoch, members: this.persisted.members, position, round: this.round, preVote: pre }
    this.candidacy = { pre, epoch, round: this.round, votes: new Set([this.selfId]), deadline: now + this.t.electionTimeoutMs, ask }
    for (const to of this.s.members) if (to !== this.selfId) effects.push({ type: 'send', to, message: ask })
    return this.tally(now, effects)
  }

  handle (from: string, msg: LeaseMessage, now: number): LeaseOutcome & { elected?: Elected } {
    const effects: LeaseEffect[] = []
    switch (msg.type) {
      case 'renew': return this.renew(from, msg, now)
      case 'request-vote': return this.vote(from, msg, now)
      case 'vote': {
        this.learn(msg.knownEpoch)
        const c = this.candidacy
        if (c === undefined || msg.epoch !== c.epoch || msg.round !== c.round) return { effects }
        if (msg.granted) { c.votes.add(from); return this.tally(now, effects) }
        if (msg.knownEpoch >= c.epoch && (msg.knownEpoch > c.epoch || msg.elected)) this.lose(now, effects, `${from.slice(-8)} knows epoch ${msg.knownEpoch}`)
        // A fresher holder stands itself: give way at the pre-vote. At the real vote the others have
        // promised this epoch already, so giving way would only cost another round.
        else if (msg.reason === 'fresher-here' && c.pre) { this.lose(now, effects, `${from.slice(-8)} holds a fresher replica`); this.notBefore = now + this.t.candidacyJitterMs }
        return { effects }
      }
      case 'refused': this.learn(msg.knownEpoch); return { effects }
      case 'granted': return { effects }
    }
  }

  state (): LeaseState {
    const c = this.candidacy
    return {
      vmId: this.vmId, role: c !== undefined ? 'candidate' : 'member', epoch: this.s.epoch, owner: this.s.owner, members: [...this.s.members],
      grantedUntil: this.grantedUntil, votableAt: Math.max(this.grantedUntil + this.t.electionMarginMs, this.quietUntil)
    }
  }

  private renew (owner: string, msg: Renew, now: number): LeaseOutcome {
    const { epoch, members, leaseMs, round } = msg
    const effects: LeaseEffect[] = []
    const refuse = (reason: LeaseRefusal): LeaseOutcome => ({ reply: { type: 'refused', vmId: this.vmId, epoch, round, reason, ...this.knowledge() }, effects })
    if (epoch < this.s.epoch) return refuse('stale-epoch')
    // A vote this host cast for itself, in a candidacy it has given up, yields to the host that won
    // that epoch (two cannot). Only at that very epoch: the self-vote may hide promises made to
    // others at lower epochs, so an older owner stays refused.
    const yielded = this.s.votedFor === this.selfId && !this.s.elected && this.candidacy === undefined
    if (epoch === this.s.epoch && !yielded && ((this.s.votedFor !== undefined && this.s.votedFor !== owner) || (this.s.owner !== '' && this.s.owner !== owner))) return refuse('promised')
    const unproven = epoch > this.s.epoch || (this.s.owner === '' && this.s.votedFor === undefined) || (epoch === this.s.epoch && yielded)
    if (unproven && !this.fresh()) {
      const handedTo = this.handedOver?.epoch === epoch && this.handedOver.to === owner
      if (!handedTo && !this.s.members.includes(owner)) return refuse('not-member')
      if (!handedTo && now < this.grantedUntil + this.t.electionMarginMs) return refuse('lease-held')
    }
    const next: PersistedLease = { vmId: this.vmId, epoch, ...(epoch === this.s.epoch && this.s.votedFor !== undefined ? { votedFor: this.s.votedFor } : {}), owner, elected: true, members: [...members] }
    if (next.epoch !== this.s.epoch || next.owner !== this.s.owner || !this.s.elected || next.members.join() !== this.s.members.join()) {
      this.s = next
      effects.push({ type: 'persist', state: this.persisted })
    }
    if (this.candidacy !== undefined) this.lose(now, effects, `${owner.slice(-8)} renews as owner at epoch ${epoch}`)
    if (msg.handover !== undefined && msg.handover.epoch === epoch + 1) this.handedOver = { ...msg.handover }
    this.grant(now + leaseMs)
    return { reply: { type: 'granted', vmId: this.vmId, epoch, round }, effects }
  }

  private vote (candidate: string, msg: RequestVote, now: number): LeaseOutcome & { elected?: Elected } {
    const effects: LeaseEffect[] = []
    const answer = (granted: boolean, reason?: LeaseRefusal): LeaseOutcome => ({
      reply: { type: 'vote', vmId: this.vmId, epoch: msg.epoch, round: msg.round, granted, ...(reason !== undefined ? { reason } : {}), ...this.knowledge() } satisfies Vote,
      effects
    })
    if (msg.epoch < this.s.epoch) return answer(false, 'stale-epoch')
    if (msg.epoch === this.s.epoch) {
      if (this.s.votedFor === candidate) return answer(true) // a duplicate
      if (this.s.votedFor !== undefined || this.s.elected) return answer(false, 'promised')
    }
    if (msg.preVote !== true) this.learn(msg.epoch)
    if (!this.s.members.includes(candidate)) return answer(false, 'not-member')
    if (now < this.quietUntil) return answer(false, 'restarting')
    if (now < this.grantedUntil + this.t.electionMarginMs) return answer(false, 'lease-held')
    if (now < this.votedUntil && candidate !== this.s.votedFor) return answer(false, 'promised')
    const own = this.position()
    if (own !== undefined && outranks(own, this.selfId, msg.position, candidate)) {
      // Stand now (or ask this candidate again, its answer may have been lost): the group wants
      // the freshest replica, and this candidate will vote for it.
      this.notBefore = -Infinity
      this.jitter = 0
      if (this.candidacy !== undefined) effects.push({ type: 'send', to: candidate, message: this.candidacy.ask })
      return answer(false, 'fresher-here')
    }
    if (msg.preVote === true) return answer(true)
    this.s = { ...this.s, epoch: msg.epoch, votedFor: candidate, owner: candidate, elected: false }
    effects.push({ type: 'persist', state: this.persisted })
    this.votedUntil = now + 2 * this.t.electionTimeoutMs
    if (this.candidacy !== undefined) this.lose(now, effects, `voted for ${candidate.slice(-8)} at epoch ${msg.epoch}`)
    return answer(true)
  }

  private tally (now: number, effects: LeaseEffect[]): LeaseOutcome & { elected?: Elected } {
    const c = this.candidacy
    if (c === undefined || c.votes.size < majority(this.s.members.length)) return { effects }
    this.candidacy = undefined
    if (c.pre) return this.ask(false, now, effects)
    this.s = { ...this.s, owner: this.selfId, elected: true }
    effects.push({ type: 'persist', state: this.persisted }, this.event('elected', c.epoch, now, `${c.votes.size} of ${this.s.members.length} votes`))
    return { effects, elected: { epoch: c.epoch, members: [this.selfId, ...this.s.members.filter((m) => m !== this.selfId)] } }
  }

  private lose (now: number, effects: LeaseEffect[], why: string): void {
    const c = this.candidacy
    if (c === undefined) return
    this.candidacy = undefined
    this.notBefore = now
    this.jitter = this.roll()
    if (!c.pre) effects.push(this.event('election-lost', c.epoch, now, why))
  }

  private canStand (now: number): boolean {
    if (this.s.members.length < 2 || !this.s.members.includes(this.selfId) || this.position() === undefined) return false
    return now >= Math.max(this.grantedUntil + this.t.electionMarginMs, this.quietUntil, this.notBefore) + this.jitter
  }

  /** No state yet: the table created this lease for a renewal it vouched for (see LeaseTable.handle). */
  private fresh (): boolean {
    return this.s.epoch === 0 && this.s.members.length === 0
  }

  private grant (until: number): void {
    if (until > this.grantedUntil) { this.grantedUntil = until; this.jitter = this.roll() }
  }

  private learn (epoch: number): void {
    if (epoch > this.seenEpoch) this.seenEpoch = epoch
  }

  private knowledge (): { knownEpoch: number, owner: string, elected: boolean } {
    return { knownEpoch: this.s.epoch, owner: this.s.owner, elected: this.s.elected }
  }

  private roll (): number {
    return Math.floor(this.random() * this.t.candidacyJitterMs)
  }

  private event (type: LeaseEventType, epoch: number, at: number, detail?: string): LeaseEffect {
    return { type: 'event', event: { type, vmId: this.vmId, epoch, at, ...(detail !== undefined ? { detail } : {}) } }
  }
}

/** Whether (a, aHost) is fresher than (b, bHost): epoch, then seq, then takenAt, then host id. */
export function outranks (a: LeasePosition, aHost: string, b: LeasePosition, bHost: string): boolean {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch
  if (a.seq !== b.seq) return a.seq > b.seq
  if (a.takenAt !== b.takenAt) return a.takenAt > b.takenAt
  return aHost > bHost
}
