import type { meshvirt } from '@meshvirt/proto'

/**
 * An error that crosses the control API: a stable code (NOT_FOUND, INVALID_ARGUMENT,
 * NO_CAPACITY, WRONG_STATE, UNAVAILABLE, INTERNAL, …) and a message that says what to do.
 */
export class ControlError extends Error {
  override readonly name = 'ControlError'
  constructor (readonly code: string, message: string, readonly details: Record<string, string> = {}) {
    super(message)
  }

  toWire (): meshvirt.v1.IError {
    return { code: this.code, message: this.message, details: this.details }
  }

  static fromWire (err: meshvirt.v1.IError | null | undefined): ControlError {
    return new ControlError(err?.code ?? 'INTERNAL', err?.message ?? 'unknown error', err?.details ?? {})
  }
}

export class AgentUnreachableError extends Error {
  override readonly name = 'AgentUnreachableError'
  readonly code = 'AGENT_UNREACHABLE'
}

/**
 * The control code each typed error of the packages below the agent reads as (the driver's, the
 * replica stream's): the one translation of those errors to the wire. A missing image is NOT_FOUND,
 * a full disk NO_CAPACITY — never a bare FAILED. The original code travels in `details.driverCode`.
 */
export const CODE_OF: Readonly<Record<string, string>> = {
  ERR_IMAGE_MISSING: 'NOT_FOUND',
  ERR_VM_NOT_FOUND: 'NOT_FOUND',
  ERR_POINT_NOT_FOUND: 'NOT_FOUND',
  ERR_VM_EXISTS: 'ALREADY_EXISTS',
  ERR_INVALID_SPEC: 'INVALID_ARGUMENT',
  ERR_RESOURCES_TOO_LARGE: 'INVALID_ARGUMENT',
  ERR_PATH_OUTSIDE_DATA_DIR: 'INVALID_ARGUMENT',
  ERR_INVALID_MIGRATION_PARAMS: 'INVALID_ARGUMENT',
  ERR_DISK_FULL: 'NO_CAPACITY',
  ERR_WRONG_STATE: 'WRONG_STATE',
  ERR_REPLICATION_NEEDS_FULL: 'FAILED_PRECONDITION',
  ERR_QEMU_MISSING: 'UNAVAILABLE',
  ERR_KVM_UNUSABLE: 'UNAVAILABLE',
  ERR_TAP_MISSING: 'UNAVAILABLE',
  ERR_SEED_TOOL_MISSING: 'UNAVAILABLE',
  ERR_QMP_TIMEOUT: 'TIMEOUT',
  ERR_WAIT_TIMEOUT: 'TIMEOUT',
  ERR_MIGRATION_TIMEOUT: 'TIMEOUT',
  ERR_MIGRATION_FAILED: 'MIGRATION_FAILED',
  ERR_ABORTED: 'ABORTED'
}

/**
 * Any error as it crosses the control API: a ControlError as it is; a typed error of a package below
 * (its `code` in CODE_OF) under its control code, the driver's code kept; anything else under
 * `fallback` (INTERNAL: a bug; FAILED: the driver failed an action in a way it did not name).
 * `prefix` says what was being done (`cannot resize VM web-1`).
 */
export function toControlError (err: unknown, fallback = 'INTERNAL', prefix?: string): ControlError {
  if (err instanceof ControlError) return err
  const code = (err as { code?: unknown } | undefined)?.code
  const driverCode = typeof code === 'string' && code.startsWith('ERR_') ? code : undefined
  const text = err instanceof Error ? err.message : String(err)
  const message = prefix === undefined ? text : `${prefix}: ${text}`
  return new ControlError((driverCode !== undefined ? CODE_OF[driverCode] : undefined) ?? fallback, message, driverCode !== undefined ? { driverCode } : {})
}
