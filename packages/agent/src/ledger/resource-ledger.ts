import { randomUUID } from 'node:crypto'
import type { HostCapacity, Overcommit, Resources } from '@meshvirt/placement'
import type { ReservationRow, StateStore } from '../store/state-store.js'
import { auditLedger, decideReserve, withGuestOverhead, type ShortOf } from './ledger-math.js'
import { decideGroupPolicy, hasGroupRules, type GroupPolicy } from './group-policy.js'

/** What the host has and may hand out, before any allocation (from inventory and config). */
export interface CapacityBase {
  total: Resources
  hostReserved: Resources
  overcommit: Overcommit
  /** Memory each guest's hypervisor process holds beyond its RAM (QEMU's own), reserved per guest. */
  guestOverheadBytes?: number
}

export type ReserveOutcome =
  | { ok: true, reservation: ReservationRow, capacity: HostCapacity }
  | { ok: false, shortOf: ShortOf, message: string, capacity: HostCapacity }
  | { ok: false, rule: 'anti-affinity' | 'anti-affinity-reserved' | 'affinity', message: string, capacity: HostCapacity }

/** Reservations are short: a broker that dies after Reserve holds nothing for long. */
export const DEFAULT_RESERVATION_TTL_MS = 10_000
export const MAX_RESERVATION_TTL_MS = 120_000

/**
 * The host's resource ledger: the only authority over its capacity. Every decision runs in one
 * SQLite transaction that first sweeps expired reservations, so the arithmetic always sees the
 * truth; the agent gossips the result as a hint.
 */
export class ResourceLedger {
  constructor (
    private readonly store: StateStore,
    private base: CapacityBase,
    private readonly clock: () => number = Date.now,
    private readonly onChange: () => void = () => {}
  ) {}

  setBase (base: CapacityBase): void {
    this.base = base
    this.onChange()
  }

  /** The capacity picture right now (expired reservations swept). */
  capacity (): HostCapacity {
    return this.store.transaction(() => {
      this.store.expireReservations(this.clock())
      return this.snapshot()
    })
  }

  /**
   * Grants or refuses in one transaction. With a `policy` (a new VM's group rules) the host also
   * checks them against its own VMs and unexpired reservations, and the reservation carries the
   * group, so a concurrent Reserve for another member of an anti-affinity group is refused here.
   */
  reserve (req: { requestId: string, brokerId: string, resources: Resources, ttlMs: number, policy?: GroupPolicy }): ReserveOutcome {
    const outcome = this.store.transaction((): ReserveOutcome => {
      const now = this.clock()
      this.store.expireReservations(now)
      // A repeated Reserve (the broker retried after a lost answer) gets the same reservation.
      const existing = this.store.findReservationByRequest(req.requestId)
      if (existing !== undefined) return { ok: true, reservation: existing, capacity: this.snapshot() }
      const before = this.snapshot()
      if (hasGroupRules(req.policy)) {
        const rules = decideGroupPolicy(req.policy, this.store.groupCounts('vms'), this.store.groupCounts('reservations'))
        if (!rules.ok) return { ok: false, rule: rules.rule, message: rules.message, capacity: before }
      }
      const decision = decideReserve(before, req.resources)
      if (!decision.ok) return { ok: false, shortOf: decision.shortOf, message: decision.message, capacity: before }
      const reservation: ReservationRow = {
        token: randomUUID(),
        requestId: req.requestId,
        brokerId: req.brokerId,
        resources: req.resources,
        expiresAt: now + Math.min(Math.max(req.ttlMs, 100), MAX_RESERVATION_TTL_MS),
        createdAt: now,
        ...(req.policy !== undefined && req.policy.group !== '' ? { group: req.policy.group } : {})
      }
      this.store.insertReservation(reservation)
      return { ok: true, reservation, capacity: this.snapshot() }
    })
    if (outcome.ok) this.onChange()
    return outcome
  }

  /**
   * A VM of this host changes size (`vm resize`): its growth must fit what is free, as a Reserve
   * would (no extra guest overhead: the guest exists); shrinking always fits. Decided and applied
   * (`apply`: the VM row's update) in one transaction, so two resizes cannot both take the last room.
   */
  resize (current: Resources, next: Resources, apply: () => void): { ok: true } | { ok: false, shortOf: ShortOf, message: string } {
    const outcome = this.store.transaction(() => {
      this.store.expireReservations(this.clock())
      const growth = {
        vcpus: Math.max(0, next.vcpus - current.vcpus),
        memoryBytes: Math.max(0, next.memoryBytes - current.memoryBytes),
        diskBytes: Math.max(0, next.diskBytes - current.diskBytes)
      }
      const decision = decideReserve(this.snapshot(0), growth)
      if (decision.ok) apply()
      return decision
    })
    if (outcome.ok) this.onChange()
    return outcome
  }

  /**
   * Removes a live reservation and returns it; for use inside the transaction that records
   * what it was reserved for. Undefined when it expired or never existed.
   */
  take (token: string): ReservationRow | undefined {
    const now = this.clock()
    const r = this.store.getReservation(token)
    if (r === undefined || r.expiresAt <= now) return undefined
    this.store.deleteReservation(token)
    return r
  }

  release (token: string): boolean {
    const existed = this.store.transaction(() => this.store.deleteReservation(token))
    if (existed) this.onChange()
    return existed
  }

  /** Releases the reservation a Reserve with this request id made, if any (its answer was lost). */
  releaseRequest (requestId: string): boolean {
    const existed = this.store.transaction(() => {
      const r = this.store.findReservationByRequest(requestId)
      return r !== undefined && this.store.deleteReservation(r.token)
    })
    if (existed) this.onChange()
    return existed
  }

  /** Dimensions over capacity × ratio (must always be empty), counting the overhead of the guests there are. */
  audit (): ShortOf[] {
    return auditLedger(this.snapshot(0))
  }

  /**
   * What this host holds back, as brokers should see it: the operator's reserve plus the
   * overhead of every guest it has and of the next one (whose RAM is what "free" offers).
   */
  hostReserved (): Resources {
    return withGuestOverhead(this.base.hostReserved, this.base.guestOverheadBytes ?? 0, this.store.guestCount() + 1)
  }

  /** `next`: guests to account beyond the existing ones (1: the capacity offered to the next VM). */
  private snapshot (next = 1): HostCapacity {
    const { guestOverheadBytes, ...base } = this.base
    const hostReserved = withGuestOverhead(base.hostReserved, guestOverheadBytes ?? 0, this.store.guestCount() + next)
    return { ...base, hostReserved, allocated: this.store.allocated(), reservations: this.store.reserved() }
  }
}
