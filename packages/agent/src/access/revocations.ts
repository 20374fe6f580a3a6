import { ADVERT_LIMITS, type UserRevocation } from '@meshvirt/mesh'
import { ControlError } from '../control/errors.js'
import { MAX_TOKEN_LIFETIME_MS, type UserClaims } from './user-token.js'
import { compareText } from '../util/compare-text.js'

const META_KEY = 'user-revocations'

/**
 * The revoked users, as this host knows them: per user, the instant before which (inclusive) its
 * tokens are refused. Kept in the state store, gossiped in every advert and merged from every
 * peer's (the later instant wins), so `user revoke` at one agent reaches all within a gossip round.
 * A revocation is forgotten once every token it covers has expired (MAX_TOKEN_LIFETIME_MS).
 */
export class Revocations {
  private readonly byUser = new Map<string, number>()

  constructor (private readonly store: { getMeta: (key: string) => string | undefined, setMeta: (key: string, value: string) => void }, private readonly now: () => number = Date.now) {
    try {
      const saved = JSON.parse(store.getMeta(META_KEY) ?? '[]') as UserRevocation[]
      for (const r of saved) this.byUser.set(r.user, r.beforeMs)
    } catch {
      // An unreadable list is rebuilt from the peers' adverts.
    }
  }

  /** Refuses every token of `user` issued until now. */
  revoke (user: string): UserRevocation {
    this.prune()
    if (!this.byUser.has(user) && this.byUser.size >= ADVERT_LIMITS.maxRevocations) {
      throw new ControlError('RESOURCE_EXHAUSTED', `${ADVERT_LIMITS.maxRevocations} users are revoked already (each stays revoked for ${MAX_TOKEN_LIFETIME_MS / 86_400_000} days after its revocation)`)
    }
    const beforeMs = Math.max(this.now(), this.byUser.get(user) ?? 0)
    this.byUser.set(user, beforeMs)
    this.save()
    return { user, beforeMs }
  }

  /** Takes in a peer's list; true when it taught this host something. */
  merge (list: readonly UserRevocation[]): boolean {
    let changed = false
    const oldest = this.now() - MAX_TOKEN_LIFETIME_MS
    for (const r of list) {
      if (r.beforeMs <= oldest || r.beforeMs <= (this.byUser.get(r.user) ?? 0)) continue
      if (!this.byUser.has(r.user) && this.byUser.size >= ADVERT_LIMITS.maxRevocations) continue
      this.byUser.set(r.user, r.beforeMs)
      changed = true
    }
    if (changed) this.save()
    return changed
  }

  refuses (claims: Pick<UserClaims, 'user' | 'issuedAtMs'>): boolean {
    const before = this.byUser.get(claims.user)
    return before !== undefined && claims.issuedAtMs <= before
  }

  list (): UserRevocation[] {
    this.prune()
    return [...this.byUser].map(([user, beforeMs]) => ({ user, beforeMs })).sort((a, b) => compareText(a.user, b.user))
  }

  private prune (): void {
    const oldest = this.now() - MAX_TOKEN_LIFETIME_MS
    let changed = false
    for (const [user, before] of this.byUser) {
      if (before <= oldest) { this.byUser.delete(user); changed = true }
    }
    if (changed) this.save()
  }

  private save (): void {
    this.store.setMeta(META_KEY, JSON.stringify([...this.byUser].map(([user, beforeMs]) => ({ user, beforeMs }))))
  }
}
