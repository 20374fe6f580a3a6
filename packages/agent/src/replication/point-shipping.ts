import type { Libp2p } from '@libp2p/interface'
import type { DiskReplication, ReplicationPoint } from '@meshvirt/hypervisor'
import type { Logger } from '../log/logger.js'
import { ReplicaRefusedError } from '../replica/errors.js'
import { OutgoingPoint } from '../replica/outgoing-point.js'
import { pointsToSend, type AvailablePoint } from '../replica/position.js'
import { shipPoint } from '../replica/replica-sender.js'
import type { ReplicaRecords } from '../store/replica-records.js'
import type { VmRow } from '../store/state-store.js'
import { nextPoint, releasableUpTo, type ServedHolder } from './replica-plan.js'
import type { HolderLink, VmLoop } from './vm-loop.js'

/** A holder that failed a transfer is retried after 1 s, 2 s, 4 s … up to this. */
const MAX_BACKOFF_MS = 10_000
/** Bound on a point's backup jobs. */
const TAKE_POINT_TIMEOUT_MS = 120_000

export interface PointShipperDeps {
  replication: DiskReplication
  libp2p: Libp2p
  records: ReplicaRecords
  log: Logger
  clock: () => number
  /** The replication loop stopped: senders end after the point they are shipping. */
  isStopped: () => boolean
}

/**
 * The points of one owner's replicated VMs: takes a crash-consistent point (full or incremental,
 * as the plan says), ships each holder the points it lacks (one sender per holder, in order, behind
 * its bandwidth bound, backing off after a failure), and releases the points every holder has.
 */
export class PointShipper {
  constructor (private readonly deps: PointShipperDeps) {}

  async takePoint (loop: VmLoop, vm: VmRow): Promise<void> {
    const { replication, log } = this.deps
    let status = await replication.replicationStatus(vm.id)
    if (!status.active) status = await replication.startReplication(vm.id)
    const available = [...loop.kept.values()].map((k) => k.point)
    const { kind, whole } = nextPoint({ needsFull: status.needsFull, lastSeq: status.lastSeq, bitmapBase: status.bitmapBase, epoch: vm.epoch, available, served: this.served(loop) })
    // With a usable bitmap a full point is a seed: holders in sync skip it.
    const seed = kind === 'full' && !status.needsFull && status.lastSeq > 0
    let point: ReplicationPoint
    try {
      point = await replication.takePoint(vm.id, { kind, seed, whole, timeoutMs: TAKE_POINT_TIMEOUT_MS })
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_REPLICATION_NEEDS_FULL' || kind === 'full') throw err
      point = await replication.takePoint(vm.id, { kind: 'full', whole: this.served(loop).some((h) => h.wholeOnly === true), timeoutMs: TAKE_POINT_TIMEOUT_MS })
    }
    const onBase = point.disks.some((d) => d.onBase === true)
    // A seed copy serves only the new holder: the holders in sync get their next incremental on time
    // (right after it, when the copy took longer than the interval).
    if (!point.seed) loop.lastPointAt = point.takenAt
    loop.kept.set(point.seq, { point: { seq: point.seq, kind: point.kind, baseSeq: point.baseSeq, seed: point.seed, ...(onBase ? { onBase } : {}) }, out: undefined })
    const s = loop.stats
    s.points++
    s.lastSeq = point.seq
    s.lastPauseMs = point.transactionMs
    s.maxPauseMs = Math.max(s.maxPauseMs, point.transactionMs)
    s.lastPointAt = point.takenAt
    s.lastError = ''
    if (point.kind === 'full') log.info(point.seed ? 'full replica point taken for a new holder (in-sync holders skip it)' : 'full replica point taken', { vm: vm.id, seq: point.seq, bytes: point.bytes, pauseMs: Math.round(point.transactionMs), layerOnly: onBase })
  }

  /** The holders being served now (not backing off), as the point plan sees them. */
  private served (loop: VmLoop): ServedHolder[] {
    const now = this.deps.clock()
    return [...loop.links.values()].filter((l) => l.failures === 0 || l.retryAt <= now).map((l) => ({ ...l.position, wholeOnly: l.wholeOnly }))
  }

  /** One sender per holder: ships, in order, the points it lacks; never two at once to one holder. */
  kick (loop: VmLoop, vm: VmRow, link: HolderLink): void {
    if (link.sending !== undefined || this.deps.clock() < link.retryAt) return
    link.sending = this.send(loop, vm, link).finally(() => { link.sending = undefined })
  }

  private async send (loop: VmLoop, vm: VmRow, link: HolderLink): Promise<void> {
    const { records, log } = this.deps
    for (;;) {
      if (this.deps.isStopped() || !loop.links.has(link.host)) return
      const todo = pointsToSend(link.position, vm.epoch, [...loop.kept.values()].map((k) => k.point), link.wholeOnly)
      if (todo === undefined || todo.length === 0) return // undefined: the next point is full (nextPoint sees it)
      const next = todo[0] as AvailablePoint
      try {
        const out = await this.outgoing(loop, vm, next.seq)
        const res = await shipPoint(this.deps.libp2p, link.host, out, { bucket: link.bucket })
        const p = res.answer.position
        link.position = { epoch: p.epoch, seq: p.seq, takenAt: p.takenAt, appliedAt: p.appliedAt }
        link.failures = 0
        link.lastError = undefined
        records.updateHolder(vm.id, link.host, { epoch: p.epoch, seq: p.seq, takenAt: p.takenAt, appliedAt: p.appliedAt, lastError: '', addSentBytes: res.sentBytes })
      } catch (err) {
        const message = (err as Error).message
        link.lastError = message
        records.updateHolder(vm.id, link.host, { lastError: message })
        if (err instanceof ReplicaRefusedError) {
          const p = err.answer.position
          if (err.refusal === 'unknown-vm') loop.announced = '' // tell it the group again
          if (err.refusal === 'gap' || err.refusal === 'already-applied') link.position = { epoch: p.epoch, seq: p.seq, takenAt: p.takenAt, appliedAt: p.appliedAt }
          if (err.refusal === 'base-unavailable' && !link.wholeOnly) {
            link.wholeOnly = true
            log.info('a holder cannot get the VM\'s base image: it gets whole disks', { vm: vm.id, peer: link.host, detail: err.answer.detail })
          }
          if (err.refusal === 'stale-epoch') log.warn('a holder follows a newer epoch of this VM than this owner has', { vm: vm.id, peer: link.host, holderEpoch: p.epoch, epoch: vm.epoch })
        }
        link.failures++
        link.retryAt = this.deps.clock() + Math.min(MAX_BACKOFF_MS, 1_000 * 2 ** (link.failures - 1))
        // A holder fetching the VM's base image is expected to refuse a while: not a warning.
        const waiting = err instanceof ReplicaRefusedError && err.refusal === 'base-missing'
        if (waiting) log.info('a holder is fetching the VM\'s base image; the point is offered again', { vm: vm.id, peer: link.host, failures: link.failures })
        else if (link.failures === 1 || link.failures % 10 === 0) log.warn('replica transfer failed; will retry', { vm: vm.id, peer: link.host, failures: link.failures, err: message })
        return
      }
    }
  }

  private async outgoing (loop: VmLoop, vm: VmRow, seq: number): Promise<OutgoingPoint> {
    const kept = loop.kept.get(seq)
    if (kept === undefined) throw new Error(`point ${seq} of ${vm.id} was released`)
    const baseDigest = vm.spec.boot.library?.digest ?? ''
    kept.out ??= this.deps.replication.openPoint(vm.id, seq).then((data) => new OutgoingPoint(data, { epoch: vm.epoch, ...(baseDigest !== '' ? { baseDigest } : {}) }))
    kept.out.catch(() => { if (loop.kept.get(seq) === kept) kept.out = undefined })
    return await kept.out
  }

  async release (loop: VmLoop, epoch: number): Promise<void> {
    const available = [...loop.kept.values()].map((k) => k.point)
    const upTo = releasableUpTo(available, this.served(loop), epoch)
    if (upTo === 0) return
    // A sender may still read a point it ships: release only what no sender uses right now.
    if ([...loop.links.values()].some((l) => l.sending !== undefined && l.position.seq < upTo)) return
    await this.deps.replication.releasePoint(loop.id, upTo)
    for (const [seq, kept] of loop.kept) {
      if (seq > upTo) continue
      loop.kept.delete(seq)
      void kept.out?.then(async (o) => { await o.close() }).catch(() => {})
    }
  }

  async closePoints (loop: VmLoop): Promise<void> {
    for (const kept of loop.kept.values()) await kept.out?.then(async (o) => { await o.close() }).catch(() => {})
    loop.kept.clear()
  }
}
