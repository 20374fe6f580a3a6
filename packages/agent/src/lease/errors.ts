/** One error class per failure of the lease protocol, matched by `code`. Messages say what to do. */

export class LeaseError extends Error {
  constructor (readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'LeaseError'
  }
}

/** A timing config that would break the protocol's safety (or flood the group). */
export class LeaseConfigError extends LeaseError {
  static readonly code = 'ERR_LEASE_CONFIG'
  constructor (message: string) {
    super(LeaseConfigError.code, message)
    this.name = 'LeaseConfigError'
  }
}

/** A malformed lease message: the peer runs another protocol version, or is broken. */
export class LeaseProtocolError extends LeaseError {
  static readonly code = 'ERR_LEASE_PROTOCOL'
  constructor (message: string, options?: { cause?: unknown }) {
    super(LeaseProtocolError.code, message, options)
    this.name = 'LeaseProtocolError'
  }
}
