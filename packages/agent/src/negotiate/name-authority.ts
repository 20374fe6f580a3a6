import { createHash } from 'node:crypto'
import type { StateStore } from '../store/state-store.js'
import type { PeerClient } from './peer-client.js'

export type ClaimOutcome =
  | { outcome: 'granted', expiresAt: number }
  | { outcome: 'same-request', vmId: string, owner: string }
  | { outcome: 'taken', vmId: string, owner: string }

/** Hosts that may hold name claims: all but the dead (a suspect host is usually just slow). */
export function nameHolders (view: { hosts: () => ReadonlyArray<{ hostId: string, liveness: string }> }): string[] {
  return view.hosts().filter((h) => h.liveness !== 'dead').map((h) => h.hostId)
}

/**
 * Which host decides who may use a VM name: the non-dead host with the highest rendezvous hash
 * of (name, host id). Every broker with the same view picks the same authority, and a host
 * joining or leaving moves only the names it wins or held (≈ 1/N of them). Brokers claim and bind
 * at the first two (name-claims.ts), so the death of one leaves the claim known.
 */
export function nameAuthority (name: string, hostIds: readonly string[]): string | undefined {
  return nameAuthorities(name, hostIds)[0]
}

/**
 * All hosts in rendezvous order for `name`: the first is the authority; when it cannot be
 * reached (it died and is not yet declared dead), the next takes over, as every broker whose
 * view lost the first would also conclude.
 */
export function nameAuthorities (name: string, hostIds: readonly string[]): string[] {
  return hostIds
    .map((id) => ({ id, score: createHash('sha256').update(name).update('\0').update(id).digest('hex') }))
    .sort((a, b) => (a.score < b.score ? 1 : a.score > b.score ? -1 : 0))
    .map((x) => x.id)
}

/** A name is claimed (and bound) at this many authorities: the first, and the one a retry finds if the first dies. */
export const NAME_AUTHORITIES = 2

/** Where a name's claim is held now: its first NAME_AUTHORITIES authorities among the non-dead hosts. */
export function claimHolders (name: string, view: { hosts: () => ReadonlyArray<{ hostId: string, liveness: string }> }): string[] {
  return nameAuthorities(name, nameHolders(view)).slice(0, NAME_AUTHORITIES)
}

/**
 * The name's authorities (the first two) learn that `owner` now runs the VM (after a migration or a failover); best
 * effort: the gossiped VM summaries say it too.
 */
export async function rebindName (peers: Pick<PeerClient, 'negotiate'>, view: { hosts: () => ReadonlyArray<{ hostId: string, liveness: string }> }, name: string, vmId: string, owner: string): Promise<void> {
  await Promise.all(claimHolders(name, view).map(async (authority) => {
    await peers.negotiate(authority, { bindName: { name, vmId, owner } }).catch(() => {})
  }))
}

/** The claims this host holds as an authority for some names (in its state store). */
export class NameClaims {
  /**
   * `inUse`: who the cluster's gossip says holds a key (a VM using an address), for keys whose
   * claim lapsed or was never recorded here — a claimant slower than its claim's TTL, or an
   * authority that took over — so what runs is never granted to another.
   */
  constructor (private readonly store: StateStore, private readonly clock: () => number = Date.now, private readonly inUse: (key: string) => string | undefined = () => undefined) {}

  claim (req: { name: string, idempotencyKey: string, vmId: string, brokerId: string, ttlMs: number }): ClaimOutcome {
    return this.store.transaction((): ClaimOutcome => {
      const now = this.clock()
      const held = this.store.getNameClaim(req.name)
      const live = held !== undefined && (held.expiresAt === null || held.expiresAt > now)
      const user = live ? undefined : this.inUse(req.name)
      if (user !== undefined && user !== req.vmId) return { outcome: 'taken', vmId: user, owner: '' }
      const ownRetry = held !== undefined && held.idempotencyKey === req.idempotencyKey && held.brokerId === req.brokerId && held.owner === ''
      if (held !== undefined && live && !ownRetry) {
        if (held.idempotencyKey === req.idempotencyKey) return { outcome: 'same-request', vmId: held.vmId, owner: held.owner }
        return { outcome: 'taken', vmId: held.vmId, owner: held.owner }
      }
      const expiresAt = now + req.ttlMs
      this.store.putNameClaim({ name: req.name, idempotencyKey: req.idempotencyKey, vmId: req.vmId, brokerId: req.brokerId, owner: '', expiresAt })
      return { outcome: 'granted', expiresAt }
    })
  }

  /** Binds a claim to the VM's owner for good, or frees the name. Only the VM holding it may. */
  bind (req: { name: string, vmId: string, owner: string, release: boolean }): boolean {
    return this.store.transaction(() => {
      const held = this.store.getNameClaim(req.name)
      if (held === undefined) {
        // The authority changed since the claim (membership moved); record the binding here too.
        if (!req.release) this.store.putNameClaim({ name: req.name, idempotencyKey: '', vmId: req.vmId, brokerId: '', owner: req.owner, expiresAt: null })
        return !req.release
      }
      if (held.vmId !== req.vmId) return false
      if (req.release) this.store.deleteNameClaim(req.name)
      else this.store.putNameClaim({ ...held, owner: req.owner, expiresAt: null })
      return true
    })
  }
}
