/**
 * One host's leases, one per replicated VM it owns, holds, or witnesses: the lease protocol of
 * `/meshvirt/lease/1.0.0` as a pure state machine (docs/design.md principle 3, issue #9). Time and
 * messages come in (`handle`, `tick`, `own`), messages to send and effects for the agent go out.
 * No I/O, no timers, no clock: LeaseService runs it for real, the simulation test under faults.
 *
 * The group of a VM is its owner, its replica holders and, when that makes an even number, a
 * witness in another failure domain (it keeps only this lease), so that a majority of ⌊n/2⌋+1 is
 * meaningful. Invariants, and why they hold:
 *
 * 1. **At most one host runs the VM at a time.** The owner runs only while it holds a lease: a
 *    majority granted a renewal it sent at T, and it fences (stops its guest) before its own
 *    drift-shortened lease from T ends. A host starts the VM only after a majority voted for it;
 *    that majority shares a member with the renewing one, which votes only once its grant has lapsed
 *    by a margin — after the fence has finished (lease-timing.ts has the arithmetic). The winner
 *    itself starts the guest (`promote`) only once its own first renewal has a majority: a member
 *    that voted for a yet higher epoch meanwhile refuses it, so a stale winner never starts.
 * 2. **At most one owner per epoch.** A member votes at most once per epoch, durably; two majorities
 *    intersect. A member that voted for epoch p refuses renewals below p, so an old owner cannot win
 *    a majority back once an election could have succeeded, and its resume (after a fence, when a
 *    majority grants again at the same epoch) is safe: that majority shares a member with any
 *    electing one, and that member would have refused.
 * 3. **Epochs only grow.** Every host keeps the highest epoch it knows durably and refuses older
 *    ones; a restarted host keeps its votes and promises (they are persisted before the answer
 *    leaves) and forgets only its grants' end instants, so it neither votes nor stands for a whole
 *    lease (+ margin) after a restart: any grant it forgot has lapsed by then.
 * 4. **Freshest replica wins.** A voter refuses a candidate whose position (epoch, seq, takenAt,
 *    then host id) is below its own, and stands itself at once; a witness has no position.
 * 5. **Liveness.** Holders stand at a random jitter after they may vote; a candidacy that has no
 *    majority by its timeout is abandoned and retried at a higher epoch. An old owner whose lease has
 *    lapsed (+ margin), whose guest is stopped and which hears of a higher epoch steps down: it becomes
 *    a holder of its disk (`demote`, owner unknown) and may itself be elected; otherwise a group whose
 *    other members had promised that epoch could wait for it forever.
 *
 * Trust (issue 22): every message's sender is the authenticated peer of its stream (noise + the
 * cluster key), and a Renew's owner must be that sender. But any cluster host can send, so a message
 * counts only from a host that may hold the role: a vote request from a member of the group this host
 * knows; a renewal at a higher epoch from a member, once this host's grant to the owner it knows has
 * lapsed (it would vote then), or from the host that owner named in a hand-over (live migration,
 * epoch + 1); a newer owner reported to a live owner is ignored while its lease holds (no election
 * can have succeeded meanwhile). A host creates no state for a VM it does not know on a peer's
 * say-so: the first renewal of an unknown VM is taken only when `vouch` agrees (the agent: this
 * host holds a replica from that sender, or the sender's signed advert lists the VM as its own).
 * The Renew carries the lease length, so owners and members may differ in it; the margins must be
 * the same cluster-wide (they are part of the safety arithmetic).
 *
 * What this does not cover (the agent must): an agent process that stalls or dies while its QEMU
 * keeps running cannot fence; something that outlives the agent's event loop must enforce the
 * fence instant for the bound to hold then (the `renewed` effect / LeaseHooks.renewed gives it).
 * Membership changes within an epoch count both groups until a round has a majority of each
 * (OwnerLease.setMembers); the simulation covers fixed groups only.
 */
import type { LeaseTiming } from './lease-timing.js'
import { MemberLease, type Elected } from './member-lease.js'
import { OwnerLease, type StepDown } from './owner-lease.js'
import type { LeaseEffect, LeaseMessage, LeaseOutcome, LeasePosition, LeaseState, PersistedLease } from './types.js'

/** A VM this host owns, as the agent says. */
export interface OwnedGroup {
  vmId: string
  epoch: number
  /** Holders and witness (this host may be included or not). */
  members: string[]
  /**
   * The guest now: `running`; `down` — meant to run but not running (the host restarted, QEMU
   * crashed, or the lease fenced it): it is resumed once the lease is held; `stopped` on purpose
   * (`vm stop`): the lease is still renewed, so nobody fails it over, and nothing resumes it.
   */
  guest: 'running' | 'down' | 'stopped'
  /** The fence instant a previous agent proved for a guest still running (see OwnerLeaseInit). */
  provenFenceAt?: number
}

export interface LeaseTableInit {
  selfId: string
  timing: LeaseTiming
  now: number
  /** What this host persisted before (its votes, promises, groups). */
  persisted?: PersistedLease[]
  /** The host (agent) restarted: grants are forgotten, so it stays quiet for a lease. */
  restarted?: boolean
  random: () => number
  /** This host's replica position of a VM (undefined when it holds none). */
  position: (vmId: string) => LeasePosition | undefined
  /**
   * Whether host `from` may start this host's lease state for a VM it has none of (its first
   * renewal). Absent: anyone may (tests of the protocol alone).
   */
  vouch?: (vmId: string, from: string) => boolean
}

type Lease = OwnerLease | MemberLease

/** Hand-overs remembered (the latest ones): a host that migrated VMs away may be their new owners' witness. */
const MAX_HANDED_OVER = 1024

export class LeaseTable {
  private readonly leases = new Map<string, Lease>()
  private readonly saved = new Map<string, PersistedLease>()
  private readonly demoted = new Map<string, number>()
  /** Hand-overs this host made as owner (live migration), bounded by the VMs it owned. */
  private readonly handedOver = new Map<string, { to: string, epoch: number }>()
  private readonly restartedAt: number | undefined

  constructor (private readonly init: LeaseTableInit) {
    this.restartedAt = init.restarted === true ? init.now : undefined
    for (const p of init.persisted ?? []) this.saved.set(p.vmId, p)
  }

  /** The agent's owned groups, every tick: adopts new ones, updates members and guest state. */
  own (group: OwnedGroup, now: number): LeaseEffect[] {
    const effects: LeaseEffect[] = []
    const saved = this.saved.get(group.vmId)
    if (saved !== undefined && (saved.epoch > group.epoch || (saved.epoch === group.epoch && saved.owner !== this.init.selfId))) {
      // The agent still thinks it owns the VM, but this host stepped down or knows a newer epoch.
      if (this.demoted.get(group.vmId) !== saved.epoch) {
        this.demoted.set(group.vmId, saved.epoch)
        if (group.guest === 'running') effects.push({ type: 'fence', vmId: group.vmId, reason: `epoch ${saved.epoch} supersedes ${group.epoch}` })
        effects.push({ type: 'demote', vmId: group.vmId, epoch: saved.epoch, ...(saved.elected && saved.owner !== '' ? { owner: saved.owner } : {}) })
      }
      return effects
    }
    let lease = this.leases.get(group.vmId)
    if (!(lease instanceof OwnerLease) || lease.epoch !== group.epoch) {
      // A group this host led at this epoch before (a restart): start from it, so the change to the
      // agent's group now must be proven by its majority too. Otherwise an owner whose holders were
      // dropped meanwhile could lead a group of itself alone, and resume a guest another host runs.
      const before = saved !== undefined && saved.epoch === group.epoch && saved.owner === this.init.selfId && saved.members.length > 0 ? saved : undefined
      lease = new OwnerLease({
        selfId: this.init.selfId, vmId: group.vmId, epoch: group.epoch, members: before?.previousMembers ?? before?.members ?? group.members, timing: this.init.timing, now,
        guest: group.guest === 'running' ? 'running' : group.guest === 'down' ? 'fenced' : 'stopped',
        ...(group.provenFenceAt !== undefined && !(lease instanceof OwnerLease) ? { provenFenceAt: group.provenFenceAt } : {})
      })
      if (before?.previousMembers !== undefined) lease.setMembers(before.members)
      lease.setMembers(group.members)
      this.leases.set(group.vmId, lease)
    } else {
      lease.setMembers(group.members)
      lease.observe(group.guest)
    }
    this.persist(lease.persisted(), effects)
    return effects
  }

  /** The agent no longer owns the VM (deleted, migrated away): stop renewing; keep what was promised. */
  disown (vmId: string): void {
    if (this.leases.get(vmId) instanceof OwnerLease) this.leases.delete(vmId)
  }

  /** Answers one message from host `from` (authenticated by the transport). */
  handle (from: string, msg: LeaseMessage, now: number): LeaseOutcome {
    if (from === this.init.selfId) return { effects: [] }
    if (msg.type === 'renew' && msg.members[0] !== from) {
      return { reply: { type: 'refused', vmId: msg.vmId, epoch: msg.epoch, round: msg.round, reason: 'invalid', knownEpoch: 0, owner: '', elected: false }, effects: [] }
    }
    let lease = this.leases.get(msg.vmId)
    if (lease === undefined) {
      const saved = this.saved.get(msg.vmId)
      if (saved === undefined && msg.type === 'request-vote') {
        return { reply: { type: 'vote', vmId: msg.vmId, epoch: msg.epoch, round: msg.round, granted: false, reason: 'unknown-vm', knownEpoch: 0, owner: '', elected: false }, effects: [] }
      }
      if (saved === undefined && msg.type !== 'renew') return { effects: [] }
      if (saved === undefined && msg.type === 'renew' && this.init.vouch?.(msg.vmId, from) === false) {
        return { reply: { type: 'refused', vmId: msg.vmId, epoch: msg.epoch, round: msg.round, reason: 'unknown-vm', knownEpoch: 0, owner: '', elected: false }, effects: [] }
      }
      lease = this.member(saved ?? { vmId: msg.vmId, epoch: 0, owner: '', elected: false, members: [] }, now)
    }
    if (lease instanceof OwnerLease) {
      const out = lease.handle(from, msg, now)
      if (out.stepDown === undefined) return out
      this.stepDown(lease, out.stepDown, now)
      if (!out.stepDown.redispatch) return { effects: out.effects }
      const again = this.handle(from, msg, now)
      return { ...(again.reply !== undefined ? { reply: again.reply } : {}), effects: [...out.effects, ...again.effects] }
    }
    return this.afterMember(lease, lease.handle(from, msg, now), now)
  }

  /** A live migration hands a VM this host owns to host `to` at epoch + 1 (OwnerLease.handOver). */
  handOver (vmId: string, to: string, now: number): LeaseEffect[] {
    const lease = this.leases.get(vmId)
    if (!(lease instanceof OwnerLease)) return []
    this.handedOver.delete(vmId)
    if (this.handedOver.size >= MAX_HANDED_OVER) this.handedOver.delete(this.handedOver.keys().next().value as string)
    this.handedOver.set(vmId, { to, epoch: lease.epoch + 1 })
    return lease.handOver(to, now)
  }

  tick (now: number): LeaseEffect[] {
    const effects: LeaseEffect[] = []
    for (const lease of [...this.leases.values()]) {
      if (lease instanceof OwnerLease) effects.push(...lease.tick(now))
      else effects.push(...this.afterMember(lease, lease.tick(now), now).effects)
    }
    for (const e of effects) if (e.type === 'persist') this.saved.set(e.state.vmId, e.state)
    return effects
  }

  state (vmId: string): LeaseState | undefined {
    return this.leases.get(vmId)?.state()
  }

  vmIds (): string[] {
    return [...this.leases.keys()]
  }

  /** Holds no lease, so tick() has nothing to do until own() or handle() brings one. */
  get empty (): boolean {
    return this.leases.size === 0
  }

  private member (state: PersistedLease, now: number): MemberLease {
    const restarted = this.restartedAt !== undefined && now < this.restartedAt + this.init.timing.restartQuietMs
    const lease = new MemberLease({
      selfId: this.init.selfId, timing: this.init.timing, state, now: this.restartedAt ?? now, restarted, random: this.init.random,
      position: () => this.init.position(state.vmId),
      ...(this.handedOver.has(state.vmId) ? { handedOver: this.handedOver.get(state.vmId) } : {})
    })
    this.leases.set(state.vmId, lease)
    return lease
  }

  private stepDown (lease: OwnerLease, down: StepDown, now: number): void {
    this.saved.set(lease.vmId, down.state)
    this.demoted.set(lease.vmId, down.state.epoch)
    this.member(down.state, now)
  }

  private afterMember (lease: MemberLease, out: LeaseOutcome & { elected?: Elected }, now: number): LeaseOutcome {
    for (const e of out.effects) if (e.type === 'persist') this.saved.set(e.state.vmId, e.state)
    const won: Elected | undefined = out.elected
    if (won !== undefined) {
      const owner = new OwnerLease({ selfId: this.init.selfId, vmId: lease.vmId, epoch: won.epoch, members: won.members, timing: this.init.timing, now, guest: 'fenced', promote: true })
      this.leases.set(lease.vmId, owner)
      out.effects.push(...owner.tick(now))
    }
    return { ...(out.reply !== undefined ? { reply: out.reply } : {}), effects: out.effects }
  }

  private persist (state: PersistedLease, effects: LeaseEffect[]): void {
    const saved = this.saved.get(state.vmId)
    if (saved !== undefined && saved.epoch === state.epoch && saved.owner === state.owner && saved.elected === state.elected &&
      saved.votedFor === state.votedFor && saved.members.join() === state.members.join()) return
    this.saved.set(state.vmId, state)
    effects.push({ type: 'persist', state })
  }
}
