import { readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { loadExeca } from '../lazy-execa.js'
import { QmpError, WrongStateError } from '../errors.js'
import { QmpEventLog } from '../migration/qmp-event-log.js'
import type { QmpClient } from '../qemu/qmp-client.js'
import type { AbortOptions, VmInfo } from '../types.js'
import { PointFailedError, PointNotFoundError, ReplicationNeedsFullError } from './errors.js'
import { PointFileReader } from './point-file-reader.js'
import { pointExtents, type QemuMapEntry } from './point-map.js'
import { readReplicationState, replicaDir, writeReplicationState, type ReplicationState } from './replication-state.js'
import type { DiskReplication, PointData, PointDisk, ReplicationPoint, ReplicationStatus, TakePointOptions } from './types.js'

/** The one dirty bitmap a replicated disk carries. */
export const REPLICA_BITMAP = 'meshvirt-replica'
/** Bound on a point's backup jobs; a full copy of a large disk under TCG is the slow case. */
export const POINT_TIMEOUT_MS = 300_000

export interface QemuReplicationInit {
  qemuImg: string
  /** The VM's single QMP connection (QemuHypervisor.monitor). */
  monitor: (id: string, options?: AbortOptions) => Promise<QmpClient>
  inspect: (id: string) => Promise<VmInfo>
  log?: (message: string, fields: Record<string, unknown>) => void
}

interface NodeInfo {
  'node-name'?: string
  image?: { 'virtual-size'?: number }
  'dirty-bitmaps'?: Array<{ name: string, count: number, inconsistent?: boolean, busy?: boolean }>
}

/**
 * Crash-consistent points of a running QEMU guest, as docs/design.md's QEMU facts measured: a
 * `transaction` of `block-dirty-bitmap-add` (persistent, so it survives a clean QEMU restart) and
 * `blockdev-backup sync=full` (`sync=top` for a disk layered on a shared base: the VM's own layer),
 * then `sync=incremental` with that bitmap for each later point. Why this
 * method: the backup job's copy-before-write filter gives a point-in-time image without pausing the
 * guest (the transaction drains I/O for a few ms), the bitmap names exactly the clusters written since
 * the last point, and `bitmap-mode=on-success` clears it only when a point completed, so a failed point
 * loses nothing. Snapshots (`blockdev-snapshot-sync`) would grow a backing chain under the running
 * guest, and a mirror is continuous, not a point. Each point is its own qcow2 file (no backing): what
 * is allocated in it is what changed, which `qemu-img map` lists with the bytes' file offsets.
 */
export class QemuReplication implements DiskReplication {
  private readonly queues = new Map<string, Promise<unknown>>()
  private readonly log: (message: string, fields: Record<string, unknown>) => void

  constructor (private readonly init: QemuReplicationInit) {
    this.log = init.log ?? (() => {})
  }

  async startReplication (id: string, options: AbortOptions = {}): Promise<ReplicationStatus> {
    return await this.serialize(id, async () => {
      const vm = await this.init.inspect(id)
      const state = await readReplicationState(vm.paths.dir)
      if (!state.active) await writeReplicationState(vm.paths.dir, { ...state, active: true, needsFull: true })
      return await this.status(vm, options)
    })
  }

  async takePoint (id: string, options: TakePointOptions): Promise<ReplicationPoint> {
    return await this.serialize(id, async () => await this.take(id, options))
  }

  async openPoint (id: string, seq: number): Promise<PointData> {
    const vm = await this.init.inspect(id)
    const point = await this.readPoint(vm.paths.dir, seq)
    const extents = []
    for (const disk of point.disks) {
      const result = await (await loadExeca())(this.init.qemuImg, ['map', '--output=json', disk.file], { reject: false, stdin: 'ignore' })
      if (result.failed) throw new PointNotFoundError(`point ${seq} of VM ${id}: cannot map ${disk.file}: ${String(result.stderr).trim()}`)
      // A layer on a shared base lists what the layer holds, as an incremental does.
      const kind = point.kind === 'full' && disk.onBase === true ? 'incremental' : point.kind
      extents.push(...pointExtents(disk.name, kind, JSON.parse(String(result.stdout)) as QemuMapEntry[]))
    }
    return await PointFileReader.open(point, extents)
  }

  async releasePoint (id: string, seq: number): Promise<void> {
    const vm = await this.init.inspect(id)
    const dir = replicaDir(vm.paths.dir)
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const s = pointSeqOf(name)
      if (s !== undefined && s <= seq) await rm(join(dir, name), { force: true })
    }
  }

  async stopReplication (id: string, options: AbortOptions = {}): Promise<void> {
    await this.serialize(id, async () => {
      const vm = await this.init.inspect(id)
      const disks = vm.spec.disks ?? []
      if (vm.state === 'running') {
        const qmp = await this.init.monitor(id, options)
        for (const d of disks) await qmp.execute('block-dirty-bitmap-remove', { node: `disk-${d.name}`, name: REPLICA_BITMAP }, options).catch(() => {})
      } else {
        // Persistent: it lives in the qcow2 of a stopped VM and would be loaded at the next start.
        for (const d of disks) await (await loadExeca())(this.init.qemuImg, ['bitmap', '--remove', vm.paths.disks[d.name] as string, REPLICA_BITMAP], { reject: false, stdin: 'ignore' })
      }
      await rm(replicaDir(vm.paths.dir), { recursive: true, force: true })
      this.log('replication stopped', { vm: id })
    })
  }

  /** Runs `fn` with no replication operation of the VM in flight (e.g. removing its directory). */
  async exclusive<T> (id: string, fn: () => Promise<T>): Promise<T> {
    return await this.serialize(id, fn)
  }

  async replicationStatus (id: string, options: AbortOptions = {}): Promise<ReplicationStatus> {
    return await this.status(await this.init.inspect(id), options)
  }

  private async take (id: string, options: TakePointOptions): Promise<ReplicationPoint> {
    const t0 = Date.now()
    const vm = await this.init.inspect(id)
    if (vm.state !== 'running') throw new WrongStateError(`VM ${id} is ${vm.state}: points are taken of a running guest`)
    const disks = vm.spec.disks ?? []
    if (disks.length === 0) throw new WrongStateError(`VM ${id} has no disk to replicate`)
    const state = await readReplicationState(vm.paths.dir)
    const qmp = await this.init.monitor(id, options)
    const nodes = await queryNodes(qmp, options)
    const { kind } = options
    if (kind === 'incremental') {
      const why = incrementalBlocker(state, disks.map((d) => nodes.get(`disk-${d.name}`)))
      if (why !== undefined) throw new ReplicationNeedsFullError(`VM ${id}: no incremental point possible (${why}); take a full point`)
    }
    const seq = state.lastSeq + 1
    const base = state.bitmapBase ?? state.lastSeq
    // A seed copy needs a bitmap that keeps counting: every disk's, intact.
    const seed = kind === 'full' && options.seed === true && state.needsFull !== true && state.pending === undefined && state.lastSeq > 0 &&
      disks.every((d) => nodes.get(`disk-${d.name}`)?.['dirty-bitmaps']?.some((b) => b.name === REPLICA_BITMAP) === true)
    const dir = replicaDir(vm.paths.dir)
    const targets: PointDisk[] = []
    const added: string[] = []
    const jobs: string[] = []
    let dirtyBytes = 0
    const events = new QmpEventLog(qmp)
    let transactionMs = 0
    let copied = false
    try {
      await writeReplicationState(vm.paths.dir, { ...state, active: true, pending: seq })
      for (const d of disks) {
        const node = nodes.get(`disk-${d.name}`)
        const sizeBytes = node?.image?.['virtual-size']
        if (sizeBytes === undefined) throw new PointFailedError(`VM ${id}: QEMU reports no block node disk-${d.name}`)
        const bitmap = node?.['dirty-bitmaps']?.find((b) => b.name === REPLICA_BITMAP)
        dirtyBytes += kind === 'full' ? sizeBytes : (bitmap?.count ?? 0)
        const file = join(dir, `${seq}-${d.name}.qcow2`)
        // Same virtual size as the source: blockdev-backup refuses a target of another size.
        const created = await (await loadExeca())(this.init.qemuImg, ['create', '-q', '-f', 'qcow2', file, String(sizeBytes)], { reject: false, stdin: 'ignore', cancelSignal: options.signal })
        if (created.failed) throw new PointFailedError(`VM ${id}: cannot create point file ${file}: ${String(created.stderr).trim()}`)
        const target = `rp-${d.name}-${seq}`
        await qmp.execute('blockdev-add', { driver: 'qcow2', 'node-name': target, file: { driver: 'file', filename: file } }, options)
        added.push(target)
        const onBase = kind === 'full' && options.whole !== true && d.sharedBase === true && d.base !== undefined
        targets.push({ name: d.name, sizeBytes, file, copiedBytes: 0, ...(onBase ? { onBase } : {}) })
      }
      const actions = disks.flatMap((d, i) => {
        const device = `disk-${d.name}`
        const job = { device, target: added[i], 'job-id': added[i], 'auto-dismiss': true }
        if (kind === 'incremental') return [{ type: 'blockdev-backup', data: { ...job, sync: 'incremental', bitmap: REPLICA_BITMAP, 'bitmap-mode': 'on-success' } }]
        // A layer on a shared base: only what the layer holds (the holder starts from the base).
        const sync = targets[i]?.onBase === true ? 'top' : 'full'
        // A seed copy leaves the bitmap counting since `base`.
        if (seed) return [{ type: 'blockdev-backup', data: { ...job, sync } }]
        // The bitmap restarts at the very instant the full copy describes.
        const hasBitmap = nodes.get(device)?.['dirty-bitmaps']?.some((b) => b.name === REPLICA_BITMAP) === true
        const bitmap = hasBitmap
          ? { type: 'block-dirty-bitmap-clear', data: { node: device, name: REPLICA_BITMAP } }
          : { type: 'block-dirty-bitmap-add', data: { node: device, name: REPLICA_BITMAP, persistent: true } }
        return [bitmap, { type: 'blockdev-backup', data: { ...job, sync } }]
      })
      const takenAt = Date.now()
      // Grouped: with several disks, one failed job cancels the others (a point is all disks or none).
      await qmp.execute('transaction', { actions, ...(disks.length > 1 ? { properties: { 'completion-mode': 'grouped' } } : {}) }, options)
      transactionMs = Date.now() - takenAt
      jobs.push(...added)
      const deadline = Date.now() + (options.timeoutMs ?? POINT_TIMEOUT_MS)
      for (const [i, job] of jobs.entries()) {
        const done = await events.find((e) => (e.event === 'BLOCK_JOB_COMPLETED' || e.event === 'BLOCK_JOB_CANCELLED') && e.data?.device === job,
          `backup job ${job}`, { timeoutMs: Math.max(1, deadline - Date.now()), ...(options.signal !== undefined ? { signal: options.signal } : {}) })
        if (done.event !== 'BLOCK_JOB_COMPLETED' || done.data?.error !== undefined) throw new PointFailedError(`VM ${id}: backup job ${job} ended with ${String(done.data?.error ?? done.event)}`)
        ;(targets[i] as PointDisk).copiedBytes = Number(done.data?.len ?? 0)
      }
      jobs.length = 0
      copied = true
      for (const node of added.splice(0)) await qmp.execute('blockdev-del', { 'node-name': node }, options)
      const point: ReplicationPoint = {
        id, seq, kind, baseSeq: kind === 'full' ? 0 : base, seed, takenAt, disks: targets,
        bytes: targets.reduce((n, t) => n + t.copiedBytes, 0), dirtyBytes, durationMs: Date.now() - t0, transactionMs
      }
      await writeFile(join(dir, `${seq}.json`), JSON.stringify(point))
      await writeReplicationState(vm.paths.dir, { version: 1, active: true, lastSeq: seq, bitmapBase: seed ? base : seq })
      this.log('replication point', { vm: id, seq, kind, bytes: point.bytes, dirtyBytes, durationMs: point.durationMs, transactionMs })
      return point
    } catch (err) {
      await this.cleanUp(qmp, jobs, added, targets.map((t) => t.file))
      // An incremental job that failed left the bitmap alone; a full one may have cleared it already,
      // and so did an incremental that completed but could not be recorded.
      // A seed copy never touched the bitmap.
      const next: ReplicationState = { ...state, active: true, ...((kind === 'full' && !seed) || copied || state.needsFull === true ? { needsFull: true } : {}) }
      await writeReplicationState(vm.paths.dir, next).catch(() => {})
      if ((err as { code?: string }).code === PointFailedError.code) throw err
      throw new PointFailedError(`VM ${id}: ${kind} point ${seq} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
    } finally {
      events.close()
    }
  }

  private async cleanUp (qmp: QmpClient, jobs: string[], nodes: string[], files: string[]): Promise<void> {
    for (const job of jobs) await qmp.execute('block-job-cancel', { device: job, force: true }).catch(() => {})
    for (const node of nodes) {
      // A cancelled job lets go of its target a moment later: retry the removal briefly.
      for (let i = 0; i < 50; i++) {
        try { await qmp.execute('blockdev-del', { 'node-name': node }); break } catch { await new Promise((resolve) => setTimeout(resolve, 20)) }
      }
    }
    for (const f of files) await rm(f, { force: true })
  }

  private async status (vm: VmInfo, options: AbortOptions): Promise<ReplicationStatus> {
    const state = await readReplicationState(vm.paths.dir)
    const points = (await readdir(replicaDir(vm.paths.dir)).catch(() => [] as string[]))
      .filter((n) => n.endsWith('.json') && n !== 'state.json').map((n) => pointSeqOf(n) as number).filter((n) => n !== undefined).sort((a, b) => a - b)
    let dirtyBytes = 0
    let needsFull = incrementalBlocker(state, []) !== undefined
    if (vm.state === 'running' && state.active) {
      const nodes = await queryNodes(await this.init.monitor(vm.id, options), options)
      const disks = (vm.spec.disks ?? []).map((d) => nodes.get(`disk-${d.name}`))
      needsFull = incrementalBlocker(state, disks) !== undefined
      for (const n of disks) dirtyBytes += n?.['dirty-bitmaps']?.find((b) => b.name === REPLICA_BITMAP)?.count ?? 0
    }
    return { id: vm.id, active: state.active, lastSeq: state.lastSeq, bitmapBase: state.bitmapBase ?? state.lastSeq, points, dirtyBytes, needsFull }
  }

  private async readPoint (vmDir: string, seq: number): Promise<ReplicationPoint> {
    try {
      return JSON.parse(await readFile(join(replicaDir(vmDir), `${seq}.json`), 'utf8')) as ReplicationPoint
    } catch (err) {
      throw new PointNotFoundError(`point ${seq} is not on this host (released or never taken)`, { cause: err })
    }
  }

  private async serialize<T> (id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(id) ?? Promise.resolve()
    const run = previous.then(fn, fn)
    const settled = run.catch(() => {})
    this.queues.set(id, settled)
    try { return await run } finally { if (this.queues.get(id) === settled) this.queues.delete(id) }
  }
}

async function queryNodes (qmp: QmpClient, options: AbortOptions): Promise<Map<string, NodeInfo>> {
  const list = await qmp.execute<NodeInfo[]>('query-named-block-nodes', { flat: true }, options)
  if (!Array.isArray(list)) throw new QmpError('query-named-block-nodes did not answer a list')
  return new Map(list.filter((n) => n['node-name'] !== undefined).map((n) => [n['node-name'] as string, n]))
}

/** Why the next point cannot be incremental, or undefined when it can. */
function incrementalBlocker (state: ReplicationState, nodes: ReadonlyArray<NodeInfo | undefined>): string | undefined {
  if (!state.active) return 'replication not started'
  if (state.lastSeq === 0) return 'no point taken yet'
  if (state.needsFull === true) return 'the last full point failed'
  if (state.pending !== undefined) return `point ${state.pending} was interrupted`
  for (const n of nodes) {
    const bitmap = n?.['dirty-bitmaps']?.find((b) => b.name === REPLICA_BITMAP)
    if (bitmap === undefined) return 'the dirty bitmap is gone (QEMU restarted from elsewhere?)'
    if (bitmap.inconsistent === true) return 'the dirty bitmap is inconsistent (QEMU was killed)'
    if (bitmap.busy === true) return 'the dirty bitmap is in use by another job'
  }
  return undefined
}

function pointSeqOf (name: string): number | undefined {
  const m = /^(\d+)(?:-[^.]+\.qcow2|\.json)$/.exec(name)
  return m === null ? undefined : Number(m[1])
}
