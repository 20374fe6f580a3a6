import { pb } from '@meshvirt/proto'
import type { VmRunState } from '../store/state-store.js'

const TO_WIRE: Record<VmRunState, number> = {
  pending: pb.VmState.VM_STATE_PENDING,
  starting: pb.VmState.VM_STATE_STARTING,
  running: pb.VmState.VM_STATE_RUNNING,
  stopping: pb.VmState.VM_STATE_STOPPING,
  stopped: pb.VmState.VM_STATE_STOPPED,
  crashed: pb.VmState.VM_STATE_CRASHED,
  deleting: pb.VmState.VM_STATE_DELETING,
  failed: pb.VmState.VM_STATE_FAILED,
  migrating: pb.VmState.VM_STATE_MIGRATING,
  fenced: pb.VmState.VM_STATE_FENCED,
  incoming: pb.VmState.VM_STATE_MIGRATING
}

export function vmStateToWire (s: VmRunState): number {
  return TO_WIRE[s]
}

export function vmStateFromWire (n: number | null | undefined): string {
  const found = Object.entries(TO_WIRE).find(([k, v]) => v === n && k !== 'incoming')
  return found?.[0] ?? 'unknown'
}

/** Which operations are legal in which state (Firecracker-style: a wrong-state call gets its own error). */
export const LEGAL: Record<'start' | 'stop' | 'delete' | 'resize', readonly VmRunState[]> = {
  // A guest the hypervisor has (running or down), not one on its way anywhere.
  resize: ['running', 'stopped', 'crashed'],
  start: ['stopped', 'crashed', 'failed'],
  stop: ['pending', 'starting', 'running', 'crashed', 'fenced'],
  delete: ['pending', 'starting', 'running', 'stopping', 'stopped', 'crashed', 'failed', 'deleting', 'fenced']
}
