/**
 * One error class per failure of the replica stream, matched by `code` (errors cross process
 * boundaries). Every message says what to do.
 */
import type { OfferAnswer, ReplicaRefusal } from './types.js'

export class ReplicaError extends Error {
  constructor (readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ReplicaError'
  }
}

/** The holder refused the point (stale epoch, gap, unknown VM, …); `answer` says where it is. */
export class ReplicaRefusedError extends ReplicaError {
  static readonly code = 'ERR_REPLICA_REFUSED'
  constructor (readonly refusal: ReplicaRefusal, readonly answer: OfferAnswer, message: string) {
    super(ReplicaRefusedError.code, message)
    this.name = 'ReplicaRefusedError'
  }
}

/** A chunk or a whole point did not match its sha256: the data was damaged and is not applied. */
export class ChecksumMismatchError extends ReplicaError {
  static readonly code = 'ERR_REPLICA_CHECKSUM'
  constructor (message: string) {
    super(ChecksumMismatchError.code, message)
    this.name = 'ChecksumMismatchError'
  }
}

/** A malformed or out-of-order message: the peer runs another protocol version, or is broken. */
export class ReplicaProtocolError extends ReplicaError {
  static readonly code = 'ERR_REPLICA_PROTOCOL'
  constructor (message: string, options?: { cause?: unknown }) {
    super(ReplicaProtocolError.code, message, options)
    this.name = 'ReplicaProtocolError'
  }
}

/** The stream broke (holder gone, reset, timeout): offer the point again and it resumes. */
export class ReplicaTransferError extends ReplicaError {
  static readonly code = 'ERR_REPLICA_TRANSFER'
  constructor (message: string, options?: { cause?: unknown }) {
    super(ReplicaTransferError.code, message, options)
    this.name = 'ReplicaTransferError'
  }
}
