import type { ClusterView, VmSummary } from '@meshvirt/mesh'
import type { meshvirt } from '@meshvirt/proto'
import type { Hypervisor } from '@meshvirt/hypervisor'
import { ControlError } from '../control/errors.js'
import { decideReserve } from '../ledger/ledger-math.js'
import type { ResourceLedger } from '../ledger/resource-ledger.js'
import type { Logger } from '../log/logger.js'
import type { ReplicaHolderService } from '../replica/replica-holder-service.js'
import type { HeldReplicaRow, ReplicaRecords } from '../store/replica-records.js'
import type { StateStore } from '../store/state-store.js'
import { newVmRow } from '../vm/new-vm-row.js'
import type { VmManager } from '../vm/vm-manager.js'
import { parseVmSpec, specResources } from '../vm/vm-spec.js'
import type { VmSpec } from '../vm/vm-spec-codec.js'
import type { VmPreparation } from '../vm/vm-preparation.js'

export interface ReplicaKeeperDeps {
  selfId: string
  store: StateStore
  records: ReplicaRecords
  ledger: ResourceLedger
  vms: VmManager
  hypervisor: Hypervisor
  /** A promoted replica comes to exist as any VM does: its disk imported from the replica's last point. */
  preparation: VmPreparation
  view: Pick<ClusterView, 'get' | 'hosts'>
  log: Logger
  clock?: () => number
  /** What this host keeps changed (the agent re-advertises: holders are found through gossip). */
  onChange?: () => void
  /**
   * Whether the lease protocol decides who runs the VM (this host takes part in its lease): a manual
   * promotion would then race the election, so it is refused and the caller waits for the election.
   */
  leaseDecides?: (vmId: string) => boolean
}

/** A replica no live host owns (its owner alive) is dropped after looking orphaned this long. */
export const ORPHAN_AFTER_MS = 60_000

/** Who may promote a replica: an operator (refused while the owner lives) or an elected lease. */
export type PromotionGrant = { kind: 'manual' } | { kind: 'lease', epoch: number }

/**
 * The holder side of replication: the replicas this host keeps for other owners. It agrees to
 * hold one (after a Reserve with role REPLICA: the disk is counted by the ledger from then on),
 * follows the owner's epoch (a new owner after a failover or a migration), lets only the current
 * owner ship points, drops a replica when told, and promotes one into a VM this host owns: the
 * failover path, which starts the guest from the last point applied, with epoch + 1.
 */
export class ReplicaKeeper {
  private readonly clock: () => number
  /** Promotions under way: no point is accepted for them any more. */
  private readonly promoting = new Set<string>()
  /** Since when each replica has looked orphaned (sweepOrphans). */
  private readonly orphanSince = new Map<string, number>()
  /** The point each replica here exposes, kept in memory for the lease's elections. */
  private readonly positions = new Map<string, { epoch: number, seq: number, takenAt: number }>()

  constructor (private readonly deps: ReplicaKeeperDeps, private readonly service: ReplicaHolderService) {
    this.clock = deps.clock ?? Date.now
  }

  /** Reads the position of every replica held here (at start: the lease votes with them). */
  async loadPositions (): Promise<void> {
    for (const h of this.deps.records.listHeld()) {
      const p = (await this.service.replica(h.vmId).catch(() => undefined))?.position
      if (p !== undefined) this.positions.set(h.vmId, { epoch: p.epoch, seq: p.seq, takenAt: p.takenAt })
    }
  }

  /** A point was applied here (the holder service's report). */
  noteApplied (vmId: string, position: { epoch: number, seq: number, takenAt: number }): void {
    this.positions.set(vmId, { epoch: position.epoch, seq: position.seq, takenAt: position.takenAt })
  }

  /** The point this host holds of `vmId`, from memory; undefined when it holds none complete. */
  positionNow (vmId: string): { epoch: number, seq: number, takenAt: number } | undefined {
    if (this.deps.records.held(vmId) === undefined) return undefined
    const p = this.positions.get(vmId)
    return p === undefined || p.seq === 0 ? undefined : p
  }

  /**
   * An old owner that learnt of a newer epoch keeps the VM's disk allocation as a replica holder
   * (its guest is gone): the new owner adopts it as a holder (and ships it a full point) or tells
   * it to drop it.
   */
  holdAfterDemotion (row: { id: string, name: string, spec: VmSpec, resources: { diskBytes: number } }, epoch: number, owner: string): void {
    const now = this.clock()
    if (row.resources.diskBytes === 0) return
    this.deps.store.durable(() => {
      if (this.deps.records.held(row.id) !== undefined) return
      this.deps.records.putHeld({ vmId: row.id, name: row.name, owner, epoch, spec: row.spec, holders: [], diskBytes: row.resources.diskBytes, createdAt: now, updatedAt: now })
    })
    this.deps.log.info('old owner keeps the VM\'s disk as a replica holder for the new owner', { vm: row.id, epoch, owner })
    this.deps.onChange?.()
  }

  /**
   * Orphans: a replica whose owner is alive but that no live host owns any more (the VM was
   * deleted while this host was away, so nobody told it) is dropped once that has been so for
   * `ORPHAN_AFTER_MS` without a break. A dead owner's replica is kept: it is what failover needs.
   */
  async sweepOrphans (now = this.clock()): Promise<string[]> {
    const dropped: string[] = []
    const owned = new Set<string>()
    for (const h of this.deps.view.hosts()) {
      if (h.liveness === 'dead') continue
      for (const v of h.advert.vms) if (v.role === 'owner') owned.add(v.id)
    }
    for (const held of this.deps.records.listHeld()) {
      const owner = this.deps.view.get(held.owner)
      const orphan = owner !== undefined && owner.liveness === 'alive' && !owned.has(held.vmId) && now - held.updatedAt >= ORPHAN_AFTER_MS
      if (!orphan) { this.orphanSince.delete(held.vmId); continue }
      const since = this.orphanSince.get(held.vmId) ?? now
      this.orphanSince.set(held.vmId, since)
      if (now - since < ORPHAN_AFTER_MS) continue
      this.orphanSince.delete(held.vmId)
      await this.dropLocal(held.vmId, `orphaned: its owner ${owner.advert.hostname} is alive and no host owns the VM any more`)
      dropped.push(held.vmId)
    }
    return dropped
  }

  /** The replica stream's gate: only the owner this host holds the VM for may ship its points. */
  accept (vmId: string, peer: string): boolean {
    if (this.promoting.has(vmId)) return false
    return this.deps.records.held(vmId)?.owner === peer
  }

  /** HoldReplica from `peer`, the VM's owner. */
  async hold (req: meshvirt.v1.HoldReplica, peer: string): Promise<meshvirt.v1.IReplicaHolding> {
    const { records, store, ledger, vms } = this.deps
    if (req.spec == null) throw new ControlError('INVALID_ARGUMENT', 'HoldReplica without the VM spec')
    const spec = parseVmSpec(req.spec)
    const epoch = Number(req.epoch)
    if (!(epoch >= 1)) throw new ControlError('INVALID_ARGUMENT', 'HoldReplica needs the owner\'s epoch (≥ 1)')
    const owned = vms.get(req.vmId)
    if (owned !== undefined) throw new ControlError(owned.epoch > epoch ? 'STALE_EPOCH' : 'WRONG_STATE', `this host owns VM ${req.vmId} (epoch ${owned.epoch}): it cannot also hold its replica`, { epoch: String(owned.epoch), owner: this.deps.selfId })
    const diskBytes = spec.resources.diskBytes
    const now = this.clock()
    store.durable(() => {
      const existing = records.held(req.vmId)
      if (existing !== undefined) {
        if (epoch < existing.epoch) throw new ControlError('STALE_EPOCH', `this host holds VM ${req.vmId} for epoch ${existing.epoch} (owner ${existing.owner}); epoch ${epoch} is older`, { epoch: String(existing.epoch), owner: existing.owner })
        if (req.token !== '') ledger.take(req.token)
        // The VM's disk grew (vm resize): so does what this host holds for it, if it has the room.
        if (diskBytes > existing.diskBytes) {
          const room = decideReserve(ledger.capacity(), { vcpus: 0, memoryBytes: 0, diskBytes: diskBytes - existing.diskBytes })
          if (!room.ok) throw new ControlError('NO_CAPACITY', `this host cannot hold the grown replica of ${existing.name}: ${room.message}`)
        }
        records.putHeld({ ...existing, owner: peer, epoch, spec, holders: [...req.holders], diskBytes: Math.max(diskBytes, existing.diskBytes), updatedAt: now })
        return
      }
      if (req.token === '') throw new ControlError('RESERVATION_EXPIRED', `this host does not hold VM ${req.vmId}: reserve its disk first`)
      const reservation = ledger.take(req.token)
      if (reservation === undefined) throw new ControlError('RESERVATION_EXPIRED', 'the replica\'s reservation expired or was never granted: reserve again')
      if (reservation.resources.diskBytes < diskBytes) throw new ControlError('INVALID_ARGUMENT', `reserved ${reservation.resources.diskBytes} bytes of disk for a ${diskBytes}-byte replica`)
      records.putHeld({ vmId: req.vmId, name: spec.name, owner: peer, epoch, spec, holders: [...req.holders], diskBytes, createdAt: now, updatedAt: now })
    })
    this.deps.onChange?.()
    return await this.holding(req.vmId)
  }

  /** DropReplica: free the replica's disk (the VM was deleted, or this holder was replaced). */
  async drop (vmId: string, epoch: number): Promise<boolean> {
    const held = this.deps.records.held(vmId)
    if (held === undefined) return false
    if (epoch < held.epoch) throw new ControlError('STALE_EPOCH', `this host holds VM ${vmId} for epoch ${held.epoch}; a drop from epoch ${epoch} is stale`)
    await this.dropLocal(vmId, 'dropped by its owner')
    return true
  }

  /** Forget a replica here, files included. */
  async dropLocal (vmId: string, why: string): Promise<void> {
    this.positions.delete(vmId)
    const existed = this.deps.store.durable(() => this.deps.records.deleteHeld(vmId))
    await this.service.removeReplica(vmId)
    if (existed) {
      this.deps.log.info('replica dropped', { vm: vmId, why })
      this.deps.onChange?.()
    }
  }

  /** What this host holds of `vmId` (the point exposed; zeros when it holds nothing). */
  async holding (vmId: string): Promise<meshvirt.v1.IReplicaHolding> {
    const held = this.deps.records.held(vmId)
    if (held === undefined) return { vmId, hostId: this.deps.selfId }
    const position = (await this.service.replica(vmId)).position
    return {
      vmId,
      hostId: this.deps.selfId,
      owner: held.owner,
      ownerEpoch: held.epoch,
      epoch: position?.epoch ?? 0,
      seq: position?.seq ?? 0,
      takenAtMs: position?.takenAt ?? 0,
      appliedAtMs: position?.appliedAt ?? 0
    }
  }

  async position (vmId: string): Promise<{ epoch: number, seq: number, takenAt: number } | undefined> {
    if (this.deps.records.held(vmId) === undefined) return undefined
    const p = (await this.service.replica(vmId)).position
    return { epoch: p.epoch, seq: p.seq, takenAt: p.takenAt }
  }

  list (): HeldReplicaRow[] {
    return this.deps.records.listHeld()
  }

  /** The replicas kept here, as this host's advert tells the cluster (role replica). */
  summaries (): VmSummary[] {
    return heldReplicaSummaries(this.deps.records)
  }

  /**
   * Failover: the VM becomes this host's, started from the replica's last applied point with
   * epoch + 1. A manual promotion is refused while any live host still owns the VM (or its
   * recorded owner is alive): `vm migrate` moves a VM whose owner lives. A lease promotion has
   * already been granted by a majority of the VM's group (the old owner fenced itself).
   */
  async promote (vmId: string, grant: PromotionGrant): Promise<meshvirt.v1.IVmSummary> {
    const { records, vms, hypervisor, preparation, log, store, ledger, selfId } = this.deps
    const held = records.held(vmId)
    if (held === undefined) {
      const owned = vms.get(vmId)
      if (owned !== undefined) return vms.info(owned).summary as meshvirt.v1.IVmSummary
      throw new ControlError('NOT_FOUND', `this host holds no replica of VM ${vmId}`)
    }
    if (grant.kind === 'manual') {
      this.refuseWhileOwnerAlive(held)
      if (this.deps.leaseDecides?.(vmId) === true) throw new ControlError('LEASE_IN_CHARGE', `the lease of ${held.name} decides who runs it: its replica group elects the freshest holder once the owner's lease has lapsed`)
    }
    const epoch = grant.kind === 'lease' ? Math.max(grant.epoch, held.epoch + 1) : held.epoch + 1
    if (this.promoting.has(vmId)) throw new ControlError('WRONG_STATE', `VM ${vmId} is already being promoted here`)
    this.promoting.add(vmId)
    try {
      const spec = held.spec
      const want = specResources(spec)
      const images = await (await this.service.replica(vmId)).images()
      if (images.position.seq === 0) throw new ControlError('WRONG_STATE', `the replica of ${held.name} here has no complete point yet: no data to start it from`)
      const room = decideReserve({ ...ledger.capacity(), allocated: withoutDisk(store.allocated(), held.diskBytes) }, want)
      if (!room.ok) throw new ControlError('NO_CAPACITY', `this host cannot run ${held.name}: ${room.message}`)
      const vda = images.disks.find((d) => d.name === 'vda')
      if (vda === undefined) throw new ControlError('INTERNAL', `the replica of ${held.name} has no disk vda`)
      // A promotion interrupted by a crash may have left the VM's files: start over from the replica.
      await hypervisor.destroy(vmId).catch(() => {})
      const driver = await preparation.prepare(vmId, spec, { kind: 'promotion', replicaDisk: vda.path })
      try {
        await hypervisor.create(driver)
      } catch (err) {
        await preparation.release(vmId)
        throw err
      }
      const row = newVmRow({ id: vmId, spec, owner: selfId, epoch, state: 'pending', resources: want, idempotencyKey: null, now: this.clock() })
      const others = held.holders.filter((h) => h !== selfId)
      try {
        store.durable(() => {
          const now = decideReserve({ ...ledger.capacity(), allocated: withoutDisk(store.allocated(), held.diskBytes) }, want)
          if (!now.ok) throw new ControlError('NO_CAPACITY', `this host cannot run ${held.name}: ${now.message}`)
          records.deleteHeld(vmId)
          store.insertVm(row)
          for (const h of others) records.addHolder(vmId, h, this.clock())
        })
      } catch (err) {
        await hypervisor.destroy(vmId).catch(() => {})
        await preparation.release(vmId)
        throw err
      }
      await this.service.removeReplica(vmId)
      log.warn('replica promoted: this host now owns the VM', { vm: vmId, name: held.name, epoch, point: images.position.seq, pointTakenAt: images.position.takenAt, grant: grant.kind })
      this.deps.onChange?.()
      return vms.info(await vms.start(vmId)).summary as meshvirt.v1.IVmSummary
    } finally {
      this.promoting.delete(vmId)
    }
  }

  private refuseWhileOwnerAlive (held: HeldReplicaRow): void {
    const owner = this.deps.view.get(held.owner)
    if (owner !== undefined && owner.liveness !== 'dead') {
      throw new ControlError('WRONG_STATE', `the owner of ${held.name} (${owner.advert.hostname}) is ${owner.liveness}: failover is only for a dead owner; use vm migrate to move it`)
    }
    for (const h of this.deps.view.hosts()) {
      if (h.liveness === 'dead' || h.self) continue
      const vm = h.advert.vms.find((v) => v.id === held.vmId && v.role === 'owner')
      if (vm !== undefined) throw new ControlError('WRONG_STATE', `${h.advert.hostname} runs ${held.name} (epoch ${vm.epoch}): failover is only for a dead owner`)
    }
  }
}

function withoutDisk (r: { vcpus: number, memoryBytes: number, diskBytes: number }, disk: number): { vcpus: number, memoryBytes: number, diskBytes: number } {
  return { ...r, diskBytes: Math.max(0, r.diskBytes - disk) }
}

/** The replicas a host keeps, as its advert tells the cluster: role replica, the disk they use. */
export function heldReplicaSummaries (records: Pick<ReplicaRecords, 'listHeld'>): VmSummary[] {
  return records.listHeld().map((h) => ({
    id: h.vmId,
    name: h.name,
    epoch: h.epoch,
    role: 'replica',
    state: 'stopped',
    nics: [],
    resources: { vcpus: 0, memoryBytes: 0, diskBytes: h.diskBytes },
    owner: h.owner,
    group: ''
  }))
}
