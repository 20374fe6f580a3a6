import { clusterIdentity, type ClusterIdentity } from '../access/cluster-identity.js'
import { Revocations } from '../access/revocations.js'
import { isRole } from '../access/roles.js'
import { DEFAULT_TOKEN_LIFETIME_MS, issueToken, MAX_TOKEN_LIFETIME_MS, TokenError, validateUserName, verifyToken, type UserClaims } from '../access/user-token.js'
import { ControlError } from '../control/errors.js'
import type { AgentFeature, FeatureContext } from './feature.js'

/** Valid tokens remembered (the oldest forgotten first). */
const CHECKED_TOKENS = 1024

export interface AccessFeature extends AgentFeature {
  identity: ClusterIdentity
  /** The claims of a valid token not revoked; a TokenError says why not. */
  authenticate: (token: string) => UserClaims
}

/**
 * Users of the API, without a user database: `user add` issues a token signed with the key every
 * agent derives from the cluster key (access/), so any agent checks any token offline; `user revoke`
 * is a revocation gossiped in every advert and merged by every agent.
 */
export function accessFeature (ctx: FeatureContext, clusterKey: Uint8Array, now: () => number = Date.now): AccessFeature {
  const identity = clusterIdentity(clusterKey)
  const revocations = new Revocations(ctx.store, now)
  const log = ctx.root.child('access', { host: ctx.selfId })
  const changed = (): void => { ctx.events.emit('features:changed', {}) }
  const checked = new Map<string, UserClaims>()
  return {
    name: 'access',
    identity,
    advert: () => ({ revocations: revocations.list() }),
    attach: ({ view }) => {
      const learn = (list: ReadonlyArray<{ user: string, beforeMs: number }>): void => { if (revocations.merge(list)) changed() }
      for (const h of view.hosts()) learn(h.advert.revocations)
      view.subscribe((e) => { if (e.type !== 'removed' && !e.host.self) learn(e.host.advert.revocations) })
    },
    authenticate: (token) => {
      // A token checked once is not checked again (MAC, JSON): its expiry and revocation still are.
      let claims = checked.get(token)
      if (claims === undefined || now() >= claims.expiresAtMs) {
        claims = verifyToken(identity.tokenKey, token, now())
        if (checked.size >= CHECKED_TOKENS) checked.delete(checked.keys().next().value as string)
        checked.set(token, claims)
      }
      if (revocations.refuses(claims)) throw new TokenError(`the tokens of ${claims.user} issued until ${new Date(revocations.list().find((r) => r.user === claims.user)?.beforeMs ?? 0).toISOString()} were revoked`)
      return claims
    },
    handlers: () => ({
      addUser: async (req) => {
        const name = req.addUser?.name ?? ''
        const role = req.addUser?.role ?? ''
        const expiresInMs = req.addUser?.expiresInMs
        try {
          validateUserName(name)
        } catch (err) {
          throw new ControlError('INVALID_ARGUMENT', (err as Error).message)
        }
        if (!isRole(role)) throw new ControlError('INVALID_ARGUMENT', `--role must be viewer, operator or admin, not '${role}'`)
        const lifetime = Number(expiresInMs ?? 0) === 0 ? DEFAULT_TOKEN_LIFETIME_MS : Number(expiresInMs)
        if (lifetime < 60_000 || lifetime > MAX_TOKEN_LIFETIME_MS) throw new ControlError('INVALID_ARGUMENT', `--expires must be between 1 minute and ${MAX_TOKEN_LIFETIME_MS / 86_400_000} days`)
        const issuedAtMs = now()
        const claims = { user: name, role, issuedAtMs, expiresAtMs: issuedAtMs + lifetime, caPin: identity.ca.pin }
        log.info('user token issued', { user: name, role, expiresAt: new Date(claims.expiresAtMs).toISOString() })
        return { userToken: { name, role, token: issueToken(identity.tokenKey, claims), issuedAtMs, expiresAtMs: claims.expiresAtMs, caPin: identity.ca.pin } }
      },
      revokeUser: async (req) => {
        const name = req.revokeUser?.name ?? ''
        try {
          validateUserName(name)
        } catch (err) {
          throw new ControlError('INVALID_ARGUMENT', (err as Error).message)
        }
        const r = revocations.revoke(name)
        log.warn('user revoked', { user: name, before: new Date(r.beforeMs).toISOString() })
        changed()
        return { revocations: { revocations: revocations.list() } }
      }
    })
  }
}
