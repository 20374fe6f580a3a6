import { WrongStateError } from './errors.js'
import type { VmState } from './types.js'

export type VmAction = 'start' | 'stop' | 'kill' | 'recover' | 'destroy'

/** In which states each action is legal (Firecracker style: a wrong-state call gets its own error). */
export const LEGAL_STATES: Record<VmAction, readonly VmState[]> = {
  start: ['created', 'stopped', 'crashed'],
  stop: ['running'],
  kill: ['running'],
  recover: ['created', 'running', 'stopped', 'crashed'],
  destroy: ['created', 'running', 'stopped', 'crashed']
}

export function isLegal (action: VmAction, state: VmState): boolean {
  return LEGAL_STATES[action].includes(state)
}

export function assertLegal (id: string, action: VmAction, state: VmState): void {
  if (!isLegal(action, state)) {
    throw new WrongStateError(`cannot ${action} VM ${id}: it is ${state} (${action} needs ${LEGAL_STATES[action].join(' or ')})`)
  }
}
