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
