import type { HostCapacity } from '@meshvirt/placement'
import { pb, type meshvirt } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'
import type { ResourceLedger } from '../ledger/resource-ledger.js'
import type { Logger } from '../log/logger.js'
import type { VmManager } from '../vm/vm-manager.js'
import { specResources, validateVmSpec } from '../vm/vm-spec.js'
import type { MigrationDestination } from '../migrate/migration-destination.js'
import type { NameClaims } from './name-authority.js'
import type { ReplicaKeeper } from '../replication/replica-keeper.js'
import { NEGOTIATE_PROTOCOL, PROTOCOL_OF } from './protocols.js'
import { admitNewVm, type CanStart } from './reserve-admission.js'

const MAX_ID = 200
const SHORT_OF: Record<string, number> = {
  cpu: pb.RefuseReason.REFUSE_REASON_INSUFFICIENT_CPU,
  memory: pb.RefuseReason.REFUSE_REASON_INSUFFICIENT_MEMORY,
  disk: pb.RefuseReason.REFUSE_REASON_INSUFFICIENT_DISK,
  'anti-affinity': pb.RefuseReason.REFUSE_REASON_ANTI_AFFINITY,
  'anti-affinity-reserved': pb.RefuseReason.REFUSE_REASON_ANTI_AFFINITY_RESERVED,
  affinity: pb.RefuseReason.REFUSE_REASON_AFFINITY
}

/** Whether this host takes new reservations now, and if not why. */
export type Accepting = { ok: true } | { ok: false, reason: 'draining' | 'shutting-down' }

export interface NegotiateServiceDeps {
  ledger: ResourceLedger
  vms: VmManager
  names: NameClaims
  log: Logger
  /** The host's administrative state: a draining or leaving host refuses every Reserve. */
  accepting: () => Accepting
  /** The driver's word on a new VM's spec (Reserve with a spec); absent: not asked. */
  canStart?: CanStart
  /** Absent when this host's hypervisor cannot receive live migrations. */
  readonly incoming?: MigrationDestination
  /** Absent when this host's hypervisor cannot replicate disks (it then holds no replicas either). */
  readonly replicas?: ReplicaKeeper
}

/**
 * The host side of the peer protocols (protocols.ts): Reserve against the ledger, Commit into a
 * VM this host owns, Release; name claims for the keys this host is an authority of; the
 * destination side of migrations; the replicas this host holds.
 * Every request is validated before use; a bad one gets an Error, never a crash.
 */
export class NegotiateService {
  constructor (private readonly deps: NegotiateServiceDeps) {}

  /**
   * Answers one request that arrived on `protocol`: only the kinds that protocol carries
   * (PROTOCOL_OF), except on the placement protocol, which still answers every kind for agents of
   * the release before the split.
   */
  async handle (bytes: Uint8Array, peer: string, protocol = NEGOTIATE_PROTOCOL): Promise<Uint8Array> {
    let res: meshvirt.v1.INegotiateResponse
    try {
      const req = pb.NegotiateRequest.decode(bytes)
      const belongs = req.body === undefined ? NEGOTIATE_PROTOCOL : PROTOCOL_OF[req.body]
      if (protocol !== NEGOTIATE_PROTOCOL && belongs !== protocol) throw new ControlError('INVALID_ARGUMENT', `${req.body ?? 'an empty request'} is not answered on ${protocol} (it belongs to ${belongs})`)
      res = await this.answer(req, peer)
    } catch (err) {
      const e = err instanceof ControlError ? err : new ControlError('INVALID_ARGUMENT', `bad negotiate request: ${(err as Error).message}`)
      if (!(err instanceof ControlError)) this.deps.log.warn('refused a bad negotiate request', { peer, err: (err as Error).message })
      res = { error: e.toWire() }
    }
    return pb.NegotiateResponse.encode(res).finish()
  }

  private async answer (req: meshvirt.v1.NegotiateRequest, peer: string): Promise<meshvirt.v1.INegotiateResponse> {
    switch (req.body) {
      case 'prepareIncoming': {
        const p = req.prepareIncoming as meshvirt.v1.PrepareIncoming
        checkId(p.token, 'token'); checkId(p.vmId, 'vm_id')
        return { incomingReady: await this.incoming().prepare(p, peer) }
      }
      case 'completeIncoming': {
        const c = req.completeIncoming as meshvirt.v1.CompleteIncoming
        checkId(c.vmId, 'vm_id')
        return { incomingCompleted: await this.incoming().complete(c, peer) }
      }
      case 'abortIncoming': {
        const a = req.abortIncoming as meshvirt.v1.AbortIncoming
        checkId(a.vmId, 'vm_id')
        await this.incoming().abort(a, peer)
        return { released: { existed: true } }
      }
      case 'reserve': return await this.reserve(req.reserve as meshvirt.v1.Reserve, peer)
      case 'commit': {
        const c = req.commit as meshvirt.v1.Commit
        checkId(c.token, 'token'); checkId(c.vmId, 'vm_id'); checkId(c.idempotencyKey, 'idempotency_key')
        if (c.spec == null) throw new ControlError('INVALID_ARGUMENT', 'commit without a VM spec')
        validateVmSpec(c.spec)
        const row = this.deps.vms.commit({ token: c.token, vmId: c.vmId, spec: c.spec, placement: c.placement, idempotencyKey: c.idempotencyKey })
        return { committed: { vm: this.deps.vms.info(row).summary } }
      }
      case 'release': {
        const r = req.release as meshvirt.v1.Release
        if (r.token === '') {
          checkId(r.requestId, 'token or request_id')
          return { released: { existed: this.deps.ledger.releaseRequest(r.requestId) } }
        }
        checkId(r.token, 'token')
        return { released: { existed: this.deps.ledger.release(r.token) } }
      }
      case 'claimName': {
        const c = req.claimName as meshvirt.v1.ClaimName
        checkId(c.name, 'name'); checkId(c.idempotencyKey, 'idempotency_key'); checkId(c.vmId, 'vm_id')
        const out = this.deps.names.claim({ name: c.name, idempotencyKey: c.idempotencyKey, vmId: c.vmId, brokerId: peer, ttlMs: clampTtl(c.ttlMs) })
        if (out.outcome === 'granted') return { nameClaim: { outcome: pb.NameClaim.Outcome.OUTCOME_GRANTED, vmId: c.vmId, expiresAtMs: out.expiresAt } }
        return {
          nameClaim: {
            outcome: out.outcome === 'same-request' ? pb.NameClaim.Outcome.OUTCOME_SAME_REQUEST : pb.NameClaim.Outcome.OUTCOME_TAKEN,
            vmId: out.vmId,
            owner: out.owner
          }
        }
      }
      case 'bindName': {
        const b = req.bindName as meshvirt.v1.BindName
        checkId(b.name, 'name'); checkId(b.vmId, 'vm_id')
        return { nameBound: { ok: this.deps.names.bind({ name: b.name, vmId: b.vmId, owner: b.owner, release: b.release }) } }
      }
      case 'holdReplica': {
        const h = req.holdReplica as meshvirt.v1.HoldReplica
        checkId(h.vmId, 'vm_id')
        if (h.token !== '') checkId(h.token, 'token')
        return { replicaHolding: await this.keeper().hold(h, peer) }
      }
      case 'dropReplica': {
        const d = req.dropReplica as meshvirt.v1.DropReplica
        checkId(d.vmId, 'vm_id')
        return { released: { existed: await this.keeper().drop(d.vmId, Number(d.epoch)) } }
      }
      case 'queryReplica': {
        const q = req.queryReplica as meshvirt.v1.QueryReplica
        checkId(q.vmId, 'vm_id')
        return { replicaHolding: await this.keeper().holding(q.vmId) }
      }
      case 'promoteReplica': {
        const p = req.promoteReplica as meshvirt.v1.PromoteReplica
        checkId(p.vmId, 'vm_id')
        return { promoted: await this.keeper().promote(p.vmId, { kind: 'manual' }) }
      }
      default:
        throw new ControlError('INVALID_ARGUMENT', 'empty negotiate request')
    }
  }

  private keeper (): ReplicaKeeper {
    if (this.deps.replicas === undefined) throw new ControlError('UNIMPLEMENTED', 'this host cannot hold replicas (its hypervisor has no disk replication)')
    return this.deps.replicas
  }

  private incoming (): MigrationDestination {
    if (this.deps.incoming === undefined) throw new ControlError('UNIMPLEMENTED', 'this host\'s hypervisor cannot receive live migrations')
    return this.deps.incoming
  }

  private async reserve (r: meshvirt.v1.Reserve, peer: string): Promise<meshvirt.v1.INegotiateResponse> {
    checkId(r.requestId, 'request_id')
    const want = specResources({ resources: r.resources })
    if (r.role === pb.VmRole.VM_ROLE_REPLICA) {
      // A replica holds the VM's disk only.
      if (want.vcpus !== 0 || want.memoryBytes !== 0 || want.diskBytes <= 0) throw new ControlError('INVALID_ARGUMENT', 'a replica reservation is for disk only: vcpus 0, memory 0, disk > 0')
      if (this.deps.replicas === undefined) throw new ControlError('UNIMPLEMENTED', 'this host cannot hold replicas (its hypervisor has no disk replication)')
    } else if (want.vcpus <= 0 || want.memoryBytes <= 0 || want.diskBytes < 0) throw new ControlError('INVALID_ARGUMENT', 'a reservation needs vcpus > 0 and memory > 0')
    const accepting = this.deps.accepting()
    if (!accepting.ok) {
      return {
        refused: {
          reason: accepting.reason === 'draining' ? pb.RefuseReason.REFUSE_REASON_DRAINING : pb.RefuseReason.REFUSE_REASON_SHUTTING_DOWN,
          message: `host is ${accepting.reason}`,
          capacity: this.deps.ledger.capacity()
        }
      }
    }
    // A new VM's spec: what only this host can know (its driver, its own group members).
    const admission = r.spec != null && r.role !== pb.VmRole.VM_ROLE_REPLICA ? await admitNewVm(r.spec, this.deps.canStart) : { ok: true as const }
    if (!admission.ok) {
      this.deps.log.info('reserve refused: the driver cannot start the VM', { peer, request: r.requestId, reason: admission.message })
      return { refused: { reason: pb.RefuseReason.REFUSE_REASON_DRIVER, message: admission.message, capacity: this.deps.ledger.capacity() } }
    }
    const out = this.deps.ledger.reserve({ requestId: r.requestId, brokerId: r.brokerId !== '' ? r.brokerId : peer, resources: want, ttlMs: clampTtl(r.ttlMs), ...(admission.policy !== undefined ? { policy: admission.policy } : {}) })
    if (out.ok) return { reserved: { token: out.reservation.token, expiresAtMs: out.reservation.expiresAt, capacity: out.capacity } }
    return { refused: { reason: SHORT_OF['shortOf' in out ? out.shortOf : out.rule], message: out.message, capacity: out.capacity as HostCapacity } }
  }
}

function checkId (value: string, what: string): void {
  if (value === '' || value.length > MAX_ID) throw new ControlError('INVALID_ARGUMENT', `${what} must be 1–${MAX_ID} characters`)
}

function clampTtl (ms: number): number {
  return Math.min(Math.max(ms > 0 ? ms : 10_000, 100), 120_000)
}
