import type { ClaimResult } from '../network/cluster-claims.js'

/**
 * How long a grant of a group's ownership lasts at its deciders, how often the owner renews it, and
 * what the owner keeps back for clocks that run at slightly different rates and for the request's
 * own transit. A dead owner's groups are taken over within about `ttlMs` of its last renewal.
 */
export interface OwnershipTiming {
  ttlMs: number
  renewEveryMs: number
  marginMs: number
}

export const DEFAULT_OWNERSHIP_TIMING: Readonly<OwnershipTiming> = Object.freeze({ ttlMs: 8_000, renewEveryMs: 2_000, marginMs: 1_000 })

/** The cluster-wide key a group's ownership is claimed under. */
export const ownerKey = (groupId: string): string => `group-owner:${groupId}`

/** What the ownership needs of the claims protocol (network/cluster-claims.ts). */
export interface OwnershipClaims {
  claim: (key: string, holder: string, idempotencyKey: string, ttlMs: number) => Promise<ClaimResult>
  release: (key: string, holder: string) => Promise<void>
}

interface Held {
  /** This host may act for the group until then (local monotonic ms). */
  until: number
  nextRenewAt: number
}

/**
 * The lease under which one host — the group's owner — reconciles a group: a claim of
 * `group-owner:ID` at the key's three deciders (a majority grants it, claim-quorum.ts), with a short
 * time-to-live, renewed by claiming again (the same claimant's retry extends its own grant). A host
 * holds the group from a renewal's *send* instant until `ttlMs − marginMs` later: the deciders
 * count their grant from its receipt, later still, so while the owner believes it holds, no other
 * host can gather a majority. An owner that cannot renew stops acting when its time runs out; the
 * deciders free the key a little after, and the next candidate claims it.
 */
export class GroupOwnership {
  private readonly held = new Map<string, Held>()
  private readonly busy = new Set<string>()

  constructor (private readonly deps: {
    selfId: string
    claims: OwnershipClaims
    timing?: OwnershipTiming
    now?: () => number
    onChange?: () => void
    /** This host now holds a group it did not hold (a first claim, or a takeover). */
    onAcquired?: (groupId: string) => void
    onError?: (groupId: string, err: Error) => void
  }) {}

  private get t (): OwnershipTiming { return this.deps.timing ?? DEFAULT_OWNERSHIP_TIMING }
  private now (): number { return (this.deps.now ?? (() => performance.now()))() }

  /** Whether this host may reconcile the group right now. */
  holds (groupId: string): boolean {
    const h = this.held.get(groupId)
    return h !== undefined && this.now() < h.until
  }

  /** The groups this host holds now (for its advert). */
  owned (): string[] {
    return [...this.held.keys()].filter((id) => this.holds(id)).sort()
  }

  /**
   * One round: renews what it holds when due, claims the groups it is the candidate for (`claim`),
   * gives up what it no longer wants (`release`). Claims run in the background; one at a time per group.
   */
  tick (wanted: ReadonlyArray<{ groupId: string, claim: boolean }>): void {
    const now = this.now()
    const keep = new Set<string>()
    for (const { groupId, claim } of wanted) {
      const h = this.held.get(groupId)
      if (h !== undefined && now < h.until) {
        keep.add(groupId)
        if (now >= h.nextRenewAt) this.request(groupId)
      } else if (claim) {
        keep.add(groupId)
        this.request(groupId)
      }
    }
    for (const id of [...this.held.keys()]) {
      if (keep.has(id)) continue
      const wasHeld = this.holds(id)
      this.held.delete(id)
      if (wasHeld) {
        this.deps.onChange?.()
        void this.deps.claims.release(ownerKey(id), this.deps.selfId).catch(() => {})
      }
    }
  }

  /** Gives every group up (the agent stops): the next owner need not wait for the grants to lapse. */
  async releaseAll (): Promise<void> {
    const ids = this.owned()
    this.held.clear()
    await Promise.all(ids.map(async (id) => { await this.deps.claims.release(ownerKey(id), this.deps.selfId).catch(() => {}) }))
  }

  private request (groupId: string): void {
    if (this.busy.has(groupId)) return
    this.busy.add(groupId)
    const sentAt = this.now()
    const wasHeld = this.holds(groupId)
    void this.deps.claims.claim(ownerKey(groupId), this.deps.selfId, `${ownerKey(groupId)}/${this.deps.selfId}`, this.t.ttlMs)
      .then((result) => {
        if (result.granted) {
          this.held.set(groupId, { until: sentAt + this.t.ttlMs - this.t.marginMs, nextRenewAt: sentAt + this.t.renewEveryMs })
          if (!wasHeld) this.deps.onAcquired?.(groupId)
        } else {
          // Another host holds it: whatever this host believed, it is not the owner.
          this.held.delete(groupId)
        }
      }, (err: unknown) => {
        // Too few deciders answered: a grant held so far stands until it runs out.
        this.deps.onError?.(groupId, err as Error)
      })
      .finally(() => {
        this.busy.delete(groupId)
        if (wasHeld !== this.holds(groupId)) this.deps.onChange?.()
      })
  }
}
