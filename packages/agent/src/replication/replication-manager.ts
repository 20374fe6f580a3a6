import type { Libp2p } from '@libp2p/interface'
import type { DiskReplication } from '@meshvirt/hypervisor'
import type { ClusterView } from '@meshvirt/mesh'
import type { meshvirt } from '@meshvirt/proto'
import { vmSpecToWire, type VmSpec } from '../vm/vm-spec-codec.js'
import type { ControlError } from '../control/errors.js'
import type { Logger } from '../log/logger.js'
import type { PeerClient } from '../negotiate/peer-client.js'
import { TokenBucket } from '../replica/token-bucket.js'
import type { ReplicaRecords } from '../store/replica-records.js'
import type { VmRow } from '../store/state-store.js'
import type { VmManager } from '../vm/vm-manager.js'
import type { ReplicaKeeper } from './replica-keeper.js'
import { recruitHolders } from './holder-recruiter.js'
import { PointShipper } from './point-shipping.js'
import { DEFAULT_RPO_MS, holderState, pointIntervalMs } from './replica-plan.js'
import { newLoop, type VmLoop } from './vm-loop.js'

export interface ReplicationManagerDeps {
  selfId: string
  records: ReplicaRecords
  vms: VmManager
  keeper: ReplicaKeeper
  replication: DiskReplication
  libp2p: Libp2p
  view: ClusterView
  peers: PeerClient
  log: Logger
  /** Bound on each holder's stream, bytes/s. */
  bandwidthBytesPerSec: number
  clock?: () => number
  /** Tick of the loop; each VM acts on its own schedule within it. */
  tickMs?: number
  /** A holder said another host owns the VM at a later epoch (the lease then steps this host down). */
  onNewerOwner?: (vmId: string, epoch: number, owner: string) => void
}

/** Reserve → HoldReplica must complete within this (a new holder's first full point comes later). */
const HOLDER_RESERVATION_TTL_MS = 30_000
/** After a failed recruitment, wait this long before asking placement again. */
const RECRUIT_RETRY_MS = 5_000
/**
 * A holder the cluster sees dead is replaced only after this long: an agent restart or a short
 * outage resumes its transfer instead of paying a new full copy elsewhere.
 */
export const HOLDER_LOST_AFTER_MS = 20_000
/** A stray holder (not one of ours) is told to drop its replica at most this often. */
const STRAY_RETELL_MS = 30_000

/**
 * The owner side of replication: for every replicated VM this host owns, keeps k holders in
 * distinct failure domains (placement + Reserve with role REPLICA + HoldReplica), replaces holders
 * that die or leave, and every half RPO while the guest runs has its points taken and shipped
 * (point-shipping.ts). A VM that arrives with holders already (a migration, a promotion) adopts them.
 */
export class ReplicationManager {
  private readonly loops = new Map<string, VmLoop>()
  /** VMs being deleted: no loop for them. */
  private readonly forgotten = new Set<string>()
  private readonly clock: () => number
  private timer: NodeJS.Timeout | undefined
  private stopped = false
  private readonly points: PointShipper

  constructor (private readonly deps: ReplicationManagerDeps) {
    this.clock = deps.clock ?? Date.now
    this.points = new PointShipper({ replication: deps.replication, libp2p: deps.libp2p, records: deps.records, log: deps.log, clock: this.clock, isStopped: () => this.stopped })
  }

  start (): void {
    this.timer = setInterval(() => { this.tick() }, this.deps.tickMs ?? 200)
    this.timer.unref()
  }

  async stop (): Promise<void> {
    this.stopped = true
    clearInterval(this.timer)
    await Promise.allSettled([...this.loops.values()].flatMap((l) => [...l.links.values()].map(async (k) => { await k.sending })))
    for (const loop of this.loops.values()) await this.points.closePoints(loop)
    this.loops.clear()
  }

  /** The holders of `vmId` and the loop's figures, for VmInfo (`vm show`). */
  statusOf (vm: VmRow): { replicas: meshvirt.v1.IReplicaStatus[], replication: meshvirt.v1.IReplicationStats | null } {
    const spec = vm.spec
    const rows = this.deps.records.holders(vm.id)
    if (rows.length === 0 && spec.replicas === 0) return { replicas: [], replication: null }
    const loop = this.loops.get(vm.id)
    const rpo = rpoOf(spec)
    const now = this.clock()
    const replicas = rows.map((r): meshvirt.v1.IReplicaStatus => {
      const link = loop?.links.get(r.holder)
      const reachable = link === undefined || link.failures === 0
      return {
        hostId: r.holder,
        hostname: this.deps.view.get(r.holder)?.advert.hostname ?? '',
        state: holderState(r, vm.epoch, now, rpo, reachable),
        epoch: r.epoch,
        seq: r.seq,
        takenAtMs: r.takenAt,
        appliedAtMs: r.appliedAt,
        ...(r.seq > 0 ? { lagMs: Math.max(0, now - r.takenAt) } : {}),
        lastError: link?.lastError ?? r.lastError ?? '',
        sentBytes: r.sentBytes
      }
    })
    const s = loop?.stats
    return {
      replicas,
      replication: { rpoMs: rpo, points: s?.points ?? 0, lastSeq: s?.lastSeq ?? 0, lastPauseMs: s?.lastPauseMs ?? 0, maxPauseMs: s?.maxPauseMs ?? 0, lastPointAtMs: s?.lastPointAt ?? 0, lastError: s?.lastError ?? '' }
    }
  }

  /** The largest lag of a VM's replicas now (ms), or undefined: not replicated here, or not measured. */
  maxLagMs (vmId: string): number | undefined {
    const vm = this.loops.has(vmId) ? this.deps.vms.get(vmId) : undefined
    if (vm === undefined) return undefined
    const lags = this.statusOf(vm).replicas.map((r) => r.lagMs).filter((l): l is number => l != null).map(Number)
    return lags.length === 0 ? undefined : Math.max(...lags)
  }

  /** Figures for /metrics: each holder's lag and state, each VM's points and pauses. */
  metrics (): { holders: Array<{ vm: string, name: string, holder: string, state: string, lagSeconds: number | undefined }>, vms: Array<{ vm: string, name: string, points: number, lastPauseMs: number, maxPauseMs: number }> } {
    const holders = []
    const vms = []
    for (const vm of this.deps.vms.list()) {
      if (!this.loops.has(vm.id)) continue
      const { replicas, replication } = this.statusOf(vm)
      for (const r of replicas) holders.push({ vm: vm.id, name: vm.name, holder: r.hostId ?? '', state: r.state ?? '', lagSeconds: r.lagMs == null ? undefined : r.lagMs / 1000 })
      if (replication != null) vms.push({ vm: vm.id, name: vm.name, points: Number(replication.points ?? 0), lastPauseMs: replication.lastPauseMs ?? 0, maxPauseMs: replication.maxPauseMs ?? 0 })
    }
    return { holders, vms }
  }

  /**
   * The VM is being deleted: its loop stops now and its holders are remembered; `commit` (once the
   * VM is gone) tells every holder to free its replica (best effort: an unreachable holder is told
   * nothing); `cancel` (the delete failed) lets the loop resume, re-adopting the holders.
   */
  forget (vm: VmRow): { commit: () => Promise<void>, cancel: () => void } {
    const loop = this.loops.get(vm.id)
    this.loops.delete(vm.id)
    this.forgotten.add(vm.id)
    const holders = this.deps.records.holders(vm.id)
    this.deps.records.removeHolders(vm.id)
    const cancel = (): void => {
      for (const h of holders) this.deps.records.addHolder(vm.id, h.holder, h.addedAt)
      this.forgotten.delete(vm.id)
    }
    const commit = async (): Promise<void> => {
      if (loop !== undefined) await this.points.closePoints(loop)
      await Promise.all(holders.map(async (h) => {
        await this.deps.peers.negotiate(h.holder, { dropReplica: { vmId: vm.id, epoch: vm.epoch } }).catch((err: unknown) => {
          this.deps.log.warn('a holder could not be told to drop its replica', { vm: vm.id, peer: h.holder, err: (err as Error).message })
        })
      }))
      await this.deps.replication.stopReplication(vm.id).catch(() => {})
      this.forgotten.delete(vm.id)
    }
    return { commit, cancel }
  }

  private tick (): void {
    if (this.stopped) return
    for (const vm of this.deps.vms.list()) {
      if (this.forgotten.has(vm.id) || vm.desired === 'deleted') continue
      let loop = this.loops.get(vm.id)
      if (loop === undefined) {
        const spec = vm.spec
        if (spec.replicas === 0 && this.deps.records.holders(vm.id).length === 0) continue
        loop = newLoop(vm.id)
        this.loops.set(vm.id, loop)
      }
      if (loop.busy) continue
      loop.busy = true
      const l = loop
      void this.step(l).catch((err: unknown) => {
        l.stats.lastError = (err as Error).message
        this.deps.log.warn('replication step failed', { vm: l.id, err: (err as Error).message })
      }).finally(() => { l.busy = false })
    }
    // VMs that left this host (migrated away, deleted): forget their loops here.
    for (const [id, loop] of this.loops) {
      if (this.deps.vms.get(id) === undefined && !loop.busy) {
        this.loops.delete(id)
        void this.points.closePoints(loop)
        this.deps.records.removeHolders(id)
      }
    }
  }

  private async step (loop: VmLoop): Promise<void> {
    const { records, vms, keeper, log } = this.deps
    const vm = vms.get(loop.id)
    if (vm === undefined || vm.state === 'migrating' || vm.state === 'incoming') return
    const spec = vm.spec
    const wanted = spec.replicas
    const rpo = rpoOf(spec)
    const now = this.clock()
    // This host owns the VM now (a migration or a promotion landed here): it holds no replica of it.
    if (records.held(vm.id) !== undefined) await keeper.dropLocal(vm.id, 'this host owns the VM now')

    let holders = await this.dropLostAndExtra(loop, vm, records.holders(vm.id), wanted)
    holders = await this.adoptOrDropStrays(loop, vm, holders, wanted)
    // A fenced owner (no lease) places nobody: it may be cut off, or stale after a failover.
    if (holders.length < wanted && now >= loop.recruitAt && vm.state !== 'fenced') {
      await recruitHolders({ ...this.deps, clock: this.clock, reservationTtlMs: HOLDER_RESERVATION_TTL_MS }, vm, spec, holders.map((h) => h.holder), wanted - holders.length).catch((err: unknown) => {
        loop.recruitAt = this.clock() + RECRUIT_RETRY_MS
        loop.stats.lastError = (err as Error).message
        log.warn('could not place a replica holder', { vm: vm.id, err: (err as Error).message })
      })
      holders = records.holders(vm.id)
    }
    this.syncLinks(loop, holders)
    await this.announce(loop, vm, spec)
    if (wanted === 0 && holders.length === 0) {
      this.loops.delete(vm.id)
      await this.points.closePoints(loop)
      await this.deps.replication.stopReplication(vm.id).catch(() => {})
      return
    }
    if (vm.state !== 'running') return
    if (now - loop.lastPointAt >= pointIntervalMs(rpo)) await this.points.takePoint(loop, vm)
    for (const link of loop.links.values()) this.points.kick(loop, vm, link)
    await this.points.release(loop, vm.epoch)
  }

  /**
   * Hosts whose adverts say they hold a replica of this VM but that are not among its holders: a VM
   * that arrived here (migration, failover) adopts them while it lacks holders; otherwise they are
   * told to drop theirs (a holder replaced while it was away, an old owner turned holder). A holder
   * that follows a newer epoch than this host's is left alone: this host is the stale one.
   */
  private async adoptOrDropStrays (loop: VmLoop, vm: VmRow, holders: ReturnType<ReplicaRecords['holders']>, wanted: number): Promise<ReturnType<ReplicaRecords['holders']>> {
    const known = new Set(holders.map((h) => h.holder))
    const now = this.clock()
    let adopted = 0
    for (const h of this.deps.view.hosts()) {
      if (h.self || h.liveness !== 'alive' || known.has(h.hostId)) continue
      const held = h.advert.vms.find((v) => v.id === vm.id && v.role === 'replica')
      if (held === undefined || held.epoch > vm.epoch) continue
      if (holders.length + adopted < wanted) {
        this.deps.records.addHolder(vm.id, h.hostId, now)
        adopted++
        this.deps.log.info('adopted a replica holder', { vm: vm.id, peer: h.hostId })
      } else if (now - (loop.strayToldAt.get(h.hostId) ?? 0) >= STRAY_RETELL_MS) {
        loop.strayToldAt.set(h.hostId, now)
        await this.deps.peers.negotiate(h.hostId, { dropReplica: { vmId: vm.id, epoch: vm.epoch } }).then(() => {
          this.deps.log.info('told a stray replica holder to drop its copy', { vm: vm.id, peer: h.hostId })
        }, () => {})
      }
    }
    return adopted === 0 ? holders : this.deps.records.holders(vm.id)
  }

  /** Holders dead for longer than HOLDER_LOST_AFTER_MS are replaced; holders beyond `wanted` are told to drop theirs. */
  private async dropLostAndExtra (loop: VmLoop, vm: VmRow, holders: ReturnType<ReplicaRecords['holders']>, wanted: number): Promise<ReturnType<ReplicaRecords['holders']>> {
    const kept = []
    const now = this.clock()
    for (const h of holders) {
      const entry = this.deps.view.get(h.holder)
      if (entry === undefined || entry.liveness === 'dead') {
        const since = loop.deadSince.get(h.holder) ?? now
        loop.deadSince.set(h.holder, since)
        if (now - since >= HOLDER_LOST_AFTER_MS) {
          this.deps.records.removeHolder(vm.id, h.holder)
          loop.deadSince.delete(h.holder)
          this.deps.log.warn('replica holder lost: placing another', { vm: vm.id, peer: h.holder, deadForMs: now - since })
          continue
        }
      } else loop.deadSince.delete(h.holder)
      if (kept.length >= wanted) {
        await this.deps.peers.negotiate(h.holder, { dropReplica: { vmId: vm.id, epoch: vm.epoch } }).catch(() => {})
        this.deps.records.removeHolder(vm.id, h.holder)
        continue
      }
      kept.push(h)
    }
    return kept
  }

  private syncLinks (loop: VmLoop, holders: ReturnType<ReplicaRecords['holders']>): void {
    const ids = new Set(holders.map((h) => h.holder))
    for (const id of loop.links.keys()) if (!ids.has(id)) loop.links.delete(id)
    for (const h of holders) {
      if (loop.links.has(h.holder)) continue
      loop.links.set(h.holder, {
        host: h.holder,
        bucket: new TokenBucket({ bytesPerSec: this.deps.bandwidthBytesPerSec }),
        position: { epoch: h.epoch, seq: h.seq, takenAt: h.takenAt, appliedAt: h.appliedAt },
        sending: undefined,
        failures: 0,
        retryAt: 0,
        lastError: undefined,
        wholeOnly: false
      })
    }
  }

  /**
   * Every holder learns the current owner, epoch, group and spec (HoldReplica without a token) when
   * they change: after a `vm resize` it keeps the new size, for a failover, and grows its reservation.
   */
  private async announce (loop: VmLoop, vm: VmRow, spec: VmSpec): Promise<void> {
    const holders = [...loop.links.keys()].sort()
    const r = vm.resources
    const key = `${vm.epoch}:${holders.join(',')}:${r.vcpus}/${r.memoryBytes}/${r.diskBytes}/${String(spec.maxMemoryBytes)}/${String(spec.maxVcpus)}`
    if (loop.announced === key || holders.length === 0) return
    const results = await Promise.all(holders.map(async (host) => {
      try {
        await this.deps.peers.negotiate(host, { holdReplica: { vmId: vm.id, epoch: vm.epoch, spec: vmSpecToWire(spec), holders } })
        return true
      } catch (err) {
        const code = (err as ControlError).code
        if (code === 'STALE_EPOCH') {
          // A newer owner exists (a failover while this host was away): this host is the stale one.
          // Keep the group as it is (shrinking it could let this host lead a group of itself) and
          // tell the lease, which steps down.
          const details = (err as ControlError).details ?? {}
          const newer = Number(details.epoch ?? 0)
          if (newer > vm.epoch) this.deps.onNewerOwner?.(vm.id, newer, details.owner ?? '')
          this.deps.log.warn('a holder follows a newer owner of this VM: this host steps down', { vm: vm.id, peer: host, epoch: newer, owner: details.owner })
        } else if (code === 'RESERVATION_EXPIRED' || code === 'WRONG_STATE' || code === 'NO_CAPACITY') {
          // It keeps nothing for us (forgot it, or follows a newer owner), or has no room for the
          // VM's grown disk: replace it.
          this.deps.records.removeHolder(vm.id, host)
          loop.links.delete(host)
          this.deps.log.warn('replica holder refused the group: replacing it', { vm: vm.id, peer: host, err: (err as Error).message })
        }
        return false
      }
    }))
    if (results.every((ok) => ok)) loop.announced = key
  }
}

export function rpoOf (spec: Pick<VmSpec, 'rpoMs'>): number {
  return spec.rpoMs > 0 ? spec.rpoMs : DEFAULT_RPO_MS
}
