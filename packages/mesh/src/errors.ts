/**
 * One error class per failure, matched by `code` (or `name`), never by `instanceof`: the
 * agent may see these across package copies. Messages say what to do.
 */
export class MeshError extends Error {
  override readonly name: string = 'MeshError'
  constructor (readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
  }
}

export class InvalidClusterKeyError extends MeshError {
  override readonly name = 'InvalidClusterKeyError'
  constructor (message: string) {
    super('INVALID_CLUSTER_KEY', `${message}; create one with \`meshvirt cluster init\` (pnet v1 swarm key format)`)
  }
}

export class InvalidIdentityKeyError extends MeshError {
  override readonly name = 'InvalidIdentityKeyError'
  constructor (message: string, cause?: unknown) {
    super('INVALID_IDENTITY_KEY', `${message}; remove the identity file to let the agent create a new host id`, { cause })
  }
}

/** A local advert peers would refuse, naming the field: thrown at start, logged (and left unpublished) after. */
export class InvalidAdvertError extends MeshError {
  override readonly name = 'InvalidAdvertError'
  constructor (readonly reason: string) {
    super('INVALID_ADVERT', `host advert refused: ${reason}`)
  }
}

export class RequestTimeoutError extends MeshError {
  override readonly name = 'RequestTimeoutError'
  constructor (protocol: string, peer: string, timeoutMs: number) {
    super('REQUEST_TIMEOUT', `${protocol} request to ${peer} got no answer within ${timeoutMs} ms; the host may be overloaded or gone`)
  }
}

export class RequestAbortedError extends MeshError {
  override readonly name = 'RequestAbortedError'
  constructor (protocol: string, peer: string, cause?: unknown) {
    super('REQUEST_ABORTED', `${protocol} request to ${peer} was aborted by the caller`, { cause })
  }
}

export class RequestFailedError extends MeshError {
  override readonly name = 'RequestFailedError'
  /** `answered`: the peer itself refused (not served, or its protocol refused in negotiation), so it is up. */
  constructor (protocol: string, peer: string, cause: unknown, readonly answered = false) {
    super('REQUEST_FAILED', `${protocol} request to ${peer} failed: ${describe(cause)}`, { cause })
  }
}

export class MessageTooLargeError extends MeshError {
  override readonly name = 'MessageTooLargeError'
  constructor (size: number, limit: number) {
    super('MESSAGE_TOO_LARGE', `message of ${size} bytes exceeds the limit of ${limit} bytes`)
  }
}

export function describe (err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}

/** The destination refused a migration tunnel stream (no such session, another host, or its QEMU socket is gone). */
export class TunnelRefusedError extends MeshError {
  override readonly name = 'TunnelRefusedError'
  constructor (session: string, channel: string, peer: string, readonly answer: string) {
    super('TUNNEL_REFUSED', `${peer} refused the ${channel} tunnel of migration ${session}: ${answer}; the destination must expose the session before the source connects`)
  }
}

/** A peer's request did not fit the bytes this host keeps for unread requests (its share, or the total). */
export class RequestOverBudgetError extends MeshError {
  override readonly name = 'RequestOverBudgetError'
  constructor (peer: string, bytes: number, which: 'peer' | 'total', limit: number) {
    super('REQUEST_OVER_BUDGET', `a ${bytes}-byte request from ${peer} would pass the ${which === 'peer' ? 'per-peer' : 'total'} budget of ${limit} bytes for unread requests; retry when its other requests are answered`)
  }
}

/** A length-prefixed frame that is malformed (bad length prefix, bytes past the frame, early end). */
export class BadFrameError extends MeshError {
  override readonly name = 'BadFrameError'
  constructor (reason: string) {
    super('BAD_FRAME', `bad length-prefixed frame: ${reason}`)
  }
}
