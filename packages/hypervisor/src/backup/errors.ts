import { HypervisorError } from '../errors.js'

/** An incremental point was asked for, but there is no usable bitmap (none yet, or QEMU died with it in use). Take a full point. */
export class ReplicationNeedsFullError extends HypervisorError {
  static readonly code = 'ERR_REPLICATION_NEEDS_FULL'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_REPLICATION_NEEDS_FULL', message, options)
    this.name = 'ReplicationNeedsFullError'
  }
}

/** A backup job failed or timed out; the bitmap still holds the changes, so the next point loses nothing. */
export class PointFailedError extends HypervisorError {
  static readonly code = 'ERR_POINT_FAILED'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_POINT_FAILED', message, options)
    this.name = 'PointFailedError'
  }
}

/** No such point on this host (released, or never taken). */
export class PointNotFoundError extends HypervisorError {
  static readonly code = 'ERR_POINT_NOT_FOUND'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_POINT_NOT_FOUND', message, options)
    this.name = 'PointNotFoundError'
  }
}
