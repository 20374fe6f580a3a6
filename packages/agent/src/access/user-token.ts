import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { isRole, type Role } from './roles.js'

const PREFIX = 'mvt1'
/** Without `--expires`, a token lasts a year. */
export const DEFAULT_TOKEN_LIFETIME_MS = 365 * 86_400_000
/** No token lasts longer: a revocation can be forgotten once every token it covers has expired. */
export const MAX_TOKEN_LIFETIME_MS = 3 * 365 * 86_400_000
const USER_NAME = /^[a-z][a-z0-9._-]{0,62}$/

/** What a valid token says. */
export interface UserClaims {
  user: string
  role: Role
  issuedAtMs: number
  expiresAtMs: number
  /** The cluster CA's pin, so a client holding only the token can check the API's certificate. */
  caPin: string
}

/** Why a token is refused (the API answers 401 with the message). */
export class TokenError extends Error {
  override readonly name = 'TokenError'
}

export function validateUserName (name: string): string {
  if (!USER_NAME.test(name)) throw new TokenError(`user name '${name}' must be 1–63 of a-z 0-9 . _ - and start with a letter`)
  return name
}

/**
 * A user token: `mvt1.<claims>.<mac>`, the claims as base64url JSON and the HMAC-SHA256 of both
 * with the cluster's token key. Any agent checks it offline; a token of another cluster fails the MAC.
 */
export function issueToken (key: Buffer, claims: UserClaims): string {
  validateUserName(claims.user)
  const body = Buffer.from(JSON.stringify({ u: claims.user, r: claims.role, iat: claims.issuedAtMs, exp: claims.expiresAtMs, ca: claims.caPin, n: randomBytes(6).toString('base64url') })).toString('base64url')
  return `${PREFIX}.${body}.${mac(key, `${PREFIX}.${body}`)}`
}

/** The claims of a token this cluster signed and that has not expired; else a TokenError saying why. */
export function verifyToken (key: Buffer, token: string, nowMs: number): UserClaims {
  const parts = token.trim().split('.')
  if (parts.length !== 3 || parts[0] !== PREFIX) throw new TokenError('not a meshvirt user token (mvt1.…): get one with `meshvirt user add`')
  const expected = Buffer.from(mac(key, `${PREFIX}.${parts[1] as string}`))
  const given = Buffer.from(parts[2] as string)
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw new TokenError('token not signed by this cluster (another cluster\'s, or altered)')
  let raw: Record<string, unknown>
  try {
    raw = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8')) as Record<string, unknown>
  } catch {
    throw new TokenError('token claims unreadable')
  }
  const { u, r, iat, exp, ca } = raw
  if (typeof u !== 'string' || typeof r !== 'string' || !isRole(r) || typeof iat !== 'number' || typeof exp !== 'number' || typeof ca !== 'string') throw new TokenError('token claims incomplete')
  if (nowMs >= exp) throw new TokenError(`token of ${u} expired at ${new Date(exp).toISOString()}`)
  return { user: u, role: r, issuedAtMs: iat, expiresAtMs: exp, caPin: ca }
}

/** The claims of a token without checking its signature: what a client reads (the CA pin). */
export function readTokenClaims (token: string): Pick<UserClaims, 'user' | 'role' | 'caPin'> | undefined {
  try {
    const raw = JSON.parse(Buffer.from(token.trim().split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>
    return typeof raw.u === 'string' && typeof raw.r === 'string' && isRole(raw.r) && typeof raw.ca === 'string' ? { user: raw.u, role: raw.r, caPin: raw.ca } : undefined
  } catch {
    return undefined
  }
}

function mac (key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text).digest('base64url')
}
