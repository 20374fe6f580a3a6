import type { HostCapacity } from '@meshvirt/placement'
import { pb, type meshvirt } from '@meshvirt/proto'
import { ControlError, toControlError } from '../control/errors.js'
import type { ResourceLedger } from '../ledger/resource-ledger.js'
import type { Logger } from '../log/logger.js'
import type { VmManager } from '../vm/vm-manager.js'
import type { MigrationDestination } from '../migrate/migration-destination.js'
import type { NameClaims } from './name-authority.js'
import type { ReplicaKeeper } from '../replication/replica-keeper.js'
import { parsePeerRequest, type PeerAction } from './peer-action.js'
import { NEGOTIATE_PROTOCOL } from './protocols.js'
import { admitNewVm, type CanStart } from './reserve-admission.js'

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
 * Every request is parsed into a validated action first (peer-action.ts); a bad one gets an Error,
 * never a crash.
 */
export class NegotiateService {
  constructor (private readonly deps: NegotiateServiceDeps) {}

  /**
   * Answers one request that arrived on `protocol`: parsed into an action (peer-action.ts), then run.
   * An undecodable request is INVALID_ARGUMENT; what running it throws crosses as toControlError says.
   */
  async handle (bytes: Uint8Array, peer: string, protocol = NEGOTIATE_PROTOCOL): Promise<Uint8Array> {
    let res: meshvirt.v1.INegotiateResponse
    let action: PeerAction | undefined
    try {
      let req: meshvirt.v1.NegotiateRequest
      try {
        req = pb.NegotiateRequest.decode(bytes)
      } catch (err) {
        this.deps.log.warn('refused an undecodable negotiate request', { peer, err: (err as Error).message })
        throw new ControlError('INVALID_ARGUMENT', `bad negotiate request: ${(err as Error).message}`)
      }
      action = parsePeerRequest(req, protocol)
      res = await this.act(action, peer)
    } catch (err) {
      if (!(err instanceof ControlError)) this.deps.log.warn('a peer request failed', { peer, kind: action?.kind, err: (err as Error).message })
      res = { error: toControlError(err).toWire() }
    }
    return pb.NegotiateResponse.encode(res).finish()
  }

  private async act (a: PeerAction, peer: string): Promise<meshvirt.v1.INegotiateResponse> {
    switch (a.kind) {
      case 'reserve': return await this.reserve(a, peer)
      case 'commit': {
        const row = this.deps.vms.commit({ token: a.token, vmId: a.vmId, spec: a.spec, placement: a.placement, idempotencyKey: a.idempotencyKey })
        return { committed: { vm: this.deps.vms.info(row).summary } }
      }
      case 'release': return { released: { existed: this.deps.ledger.release(a.token) } }
      case 'releaseRequest': return { released: { existed: this.deps.ledger.releaseRequest(a.requestId) } }
      case 'claimName': {
        const out = this.deps.names.claim({ name: a.name, idempotencyKey: a.idempotencyKey, vmId: a.vmId, brokerId: peer, ttlMs: a.ttlMs })
        if (out.outcome === 'granted') return { nameClaim: { outcome: pb.NameClaim.Outcome.OUTCOME_GRANTED, vmId: a.vmId, expiresAtMs: out.expiresAt } }
        return {
          nameClaim: {
            outcome: out.outcome === 'same-request' ? pb.NameClaim.Outcome.OUTCOME_SAME_REQUEST : pb.NameClaim.Outcome.OUTCOME_TAKEN,
            vmId: out.vmId,
            owner: out.owner
          }
        }
      }
      case 'bindName': return { nameBound: { ok: this.deps.names.bind({ name: a.name, vmId: a.vmId, owner: a.owner, release: a.release }) } }
      case 'prepareIncoming': return { incomingReady: await this.incoming().prepare(a.request, peer) }
      case 'completeIncoming': return { incomingCompleted: await this.incoming().complete(a.request, peer) }
      case 'abortIncoming':
        await this.incoming().abort(a.request, peer)
        return { released: { existed: true } }
      case 'holdReplica': return { replicaHolding: await this.keeper().hold(a.request, peer) }
      case 'dropReplica': return { released: { existed: await this.keeper().drop(a.vmId, a.epoch) } }
      case 'queryReplica': return { replicaHolding: await this.keeper().holding(a.vmId) }
      case 'promoteReplica': return { promoted: await this.keeper().promote(a.vmId, { kind: 'manual' }) }
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

  private async reserve (r: Extract<PeerAction, { kind: 'reserve' }>, peer: string): Promise<meshvirt.v1.INegotiateResponse> {
    if (r.replica && this.deps.replicas === undefined) throw new ControlError('UNIMPLEMENTED', 'this host cannot hold replicas (its hypervisor has no disk replication)')
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
    const admission = r.spec !== undefined ? await admitNewVm(r.spec, this.deps.canStart) : { ok: true as const }
    if (!admission.ok) {
      this.deps.log.info(admission.busy === true ? 'reserve refused: too busy to check the VM' : 'reserve refused: the driver cannot start the VM', { peer, request: r.requestId, reason: admission.message })
      const reason = admission.busy === true ? pb.RefuseReason.REFUSE_REASON_OVERLOADED : pb.RefuseReason.REFUSE_REASON_DRIVER
      return { refused: { reason, message: admission.message, capacity: this.deps.ledger.capacity() } }
    }
    const out = this.deps.ledger.reserve({ requestId: r.requestId, brokerId: r.brokerId !== '' ? r.brokerId : peer, resources: r.resources, ttlMs: r.ttlMs, ...(admission.policy !== undefined ? { policy: admission.policy } : {}) })
    if (out.ok) return { reserved: { token: out.reservation.token, expiresAtMs: out.reservation.expiresAt, capacity: out.capacity } }
    return { refused: { reason: SHORT_OF['shortOf' in out ? out.shortOf : out.rule], message: out.message, capacity: out.capacity as HostCapacity } }
  }
}
