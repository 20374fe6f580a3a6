import type { Resources } from '@meshvirt/placement'
import { pb, type meshvirt } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'
import { parseVmSpec } from '../vm/vm-spec.js'
import { resourcesFromWire, vmSpecFromWire, type VmSpec } from '../vm/vm-spec-codec.js'
import { NEGOTIATE_PROTOCOL, PROTOCOL_OF } from './protocols.js'

const MAX_ID = 200

/**
 * Parse, then act, for the peer protocols (as the control API does, control/control-action.ts): a
 * NegotiateRequest that arrived on a protocol is turned once into one validated action of this
 * union — identifiers checked, the spec validated, time-to-lives clamped, a kind asked on the wrong
 * protocol refused — and NegotiateService only runs it. The migration and replica-group kinds still
 * carry their wire messages, checked here, to the parts that answer them.
 */
export type PeerAction =
  | { kind: 'reserve', requestId: string, brokerId: string, resources: Resources, ttlMs: number, replica: boolean, spec: VmSpec | undefined }
  | { kind: 'commit', token: string, vmId: string, idempotencyKey: string, spec: VmSpec, placement: meshvirt.v1.IPlacementExplanation | null }
  | { kind: 'release', token: string }
  | { kind: 'releaseRequest', requestId: string }
  | { kind: 'claimName', name: string, idempotencyKey: string, vmId: string, ttlMs: number }
  | { kind: 'bindName', name: string, vmId: string, owner: string, release: boolean }
  | { kind: 'prepareIncoming', request: meshvirt.v1.PrepareIncoming }
  | { kind: 'completeIncoming', request: meshvirt.v1.CompleteIncoming }
  | { kind: 'abortIncoming', request: meshvirt.v1.AbortIncoming }
  | { kind: 'holdReplica', request: meshvirt.v1.HoldReplica }
  | { kind: 'dropReplica', vmId: string, epoch: number }
  | { kind: 'queryReplica', vmId: string }
  | { kind: 'promoteReplica', vmId: string }

/**
 * The action a request asks for, when it arrived on `protocol`: only the kinds that protocol carries
 * (PROTOCOL_OF), except on the placement protocol, which still answers every kind for agents of the
 * release before the split. Throws ControlError INVALID_ARGUMENT naming the field at fault.
 */
export function parsePeerRequest (req: meshvirt.v1.NegotiateRequest, protocol = NEGOTIATE_PROTOCOL): PeerAction {
  if (req.body === undefined) throw new ControlError('INVALID_ARGUMENT', 'empty negotiate request')
  const belongs = PROTOCOL_OF[req.body]
  if (protocol !== NEGOTIATE_PROTOCOL && belongs !== protocol) throw new ControlError('INVALID_ARGUMENT', `${req.body} is not answered on ${protocol} (it belongs to ${belongs})`)
  switch (req.body) {
    case 'reserve': {
      const r = req.reserve as meshvirt.v1.Reserve
      const requestId = id(r.requestId, 'request_id')
      const resources = resourcesFromWire(r.resources)
      const replica = r.role === pb.VmRole.VM_ROLE_REPLICA
      // A replica holds the VM's disk only.
      if (replica && (resources.vcpus !== 0 || resources.memoryBytes !== 0 || resources.diskBytes <= 0)) throw new ControlError('INVALID_ARGUMENT', 'a replica reservation is for disk only: vcpus 0, memory 0, disk > 0')
      if (!replica && (resources.vcpus <= 0 || resources.memoryBytes <= 0 || resources.diskBytes < 0)) throw new ControlError('INVALID_ARGUMENT', 'a reservation needs vcpus > 0 and memory > 0')
      return { kind: 'reserve', requestId, brokerId: r.brokerId, resources, ttlMs: clampTtl(r.ttlMs), replica, spec: r.spec != null && !replica ? vmSpecFromWire(r.spec) : undefined }
    }
    case 'commit': {
      const c = req.commit as meshvirt.v1.Commit
      const action = { token: id(c.token, 'token'), vmId: id(c.vmId, 'vm_id'), idempotencyKey: id(c.idempotencyKey, 'idempotency_key') }
      if (c.spec == null) throw new ControlError('INVALID_ARGUMENT', 'commit without a VM spec')
      return { kind: 'commit', ...action, spec: parseVmSpec(c.spec), placement: c.placement ?? null }
    }
    case 'release': {
      const r = req.release as meshvirt.v1.Release
      if (r.token === '') return { kind: 'releaseRequest', requestId: id(r.requestId, 'token or request_id') }
      return { kind: 'release', token: id(r.token, 'token') }
    }
    case 'claimName': {
      const c = req.claimName as meshvirt.v1.ClaimName
      return { kind: 'claimName', name: id(c.name, 'name'), idempotencyKey: id(c.idempotencyKey, 'idempotency_key'), vmId: id(c.vmId, 'vm_id'), ttlMs: clampTtl(c.ttlMs) }
    }
    case 'bindName': {
      const b = req.bindName as meshvirt.v1.BindName
      return { kind: 'bindName', name: id(b.name, 'name'), vmId: id(b.vmId, 'vm_id'), owner: b.owner, release: b.release }
    }
    case 'prepareIncoming': {
      const p = req.prepareIncoming as meshvirt.v1.PrepareIncoming
      id(p.token, 'token'); id(p.vmId, 'vm_id')
      return { kind: 'prepareIncoming', request: p }
    }
    case 'completeIncoming': {
      const c = req.completeIncoming as meshvirt.v1.CompleteIncoming
      id(c.vmId, 'vm_id')
      return { kind: 'completeIncoming', request: c }
    }
    case 'abortIncoming': {
      const a = req.abortIncoming as meshvirt.v1.AbortIncoming
      id(a.vmId, 'vm_id')
      return { kind: 'abortIncoming', request: a }
    }
    case 'holdReplica': {
      const h = req.holdReplica as meshvirt.v1.HoldReplica
      id(h.vmId, 'vm_id')
      if (h.token !== '') id(h.token, 'token')
      return { kind: 'holdReplica', request: h }
    }
    case 'dropReplica': {
      const d = req.dropReplica as meshvirt.v1.DropReplica
      return { kind: 'dropReplica', vmId: id(d.vmId, 'vm_id'), epoch: Number(d.epoch) }
    }
    case 'queryReplica': return { kind: 'queryReplica', vmId: id((req.queryReplica as meshvirt.v1.QueryReplica).vmId, 'vm_id') }
    case 'promoteReplica': return { kind: 'promoteReplica', vmId: id((req.promoteReplica as meshvirt.v1.PromoteReplica).vmId, 'vm_id') }
  }
}

function id (value: string, what: string): string {
  if (value === '' || value.length > MAX_ID) throw new ControlError('INVALID_ARGUMENT', `${what} must be 1–${MAX_ID} characters`)
  return value
}

/** A claim or reservation lives 100 ms to 2 min (10 s when the request names none). */
export function clampTtl (ms: number): number {
  return Math.min(Math.max(ms > 0 ? ms : 10_000, 100), 120_000)
}
