import { WrongStateError } from '../errors.js'
import type { AbortOptions, VmInfo } from '../types.js'
import { PointNotFoundError, ReplicationNeedsFullError } from './errors.js'
import type { DiskReplication, PointData, PointExtent, PointKind, ReplicationPoint, ReplicationStatus, TakePointOptions } from './types.js'

/** The simulated bitmap's granularity (QEMU's default for a qcow2 with 64 KiB clusters). */
export const SIM_BLOCK_BYTES = 64 * 1024

export interface SimReplicationInit {
  inspect: (id: string) => Promise<VmInfo>
  /** Pretend duration of a point, ms. Default 0. */
  pointLatencyMs?: number
}

interface SimPoint { point: ReplicationPoint, blocks: Map<string, Map<number, Uint8Array>> }

interface SimReplica {
  active: boolean
  lastSeq: number
  /** The point since which `dirty` counts (a seed full point leaves it). */
  bitmapBase?: number
  /** Written blocks per disk, replaced (never mutated) on write so that points can share them. */
  disks: Map<string, Map<number, Uint8Array>>
  dirty: Map<string, Set<number>>
  points: Map<number, SimPoint>
}

/**
 * Replication for the simulated driver: disks are sparse maps of 64 KiB blocks in memory, written
 * through `write()` (the simulation has no guest), with a set of dirty blocks standing in for QEMU's
 * bitmap. It exists for control-plane tests and scale runs of the replica stream, and says so.
 */
export class SimReplication implements DiskReplication {
  private readonly vms = new Map<string, SimReplica>()
  private readonly pointLatencyMs: number

  constructor (private readonly init: SimReplicationInit) {
    this.pointLatencyMs = init.pointLatencyMs ?? 0
  }

  /** The simulated guest writes `bytes` at `offset` of `disk`. */
  async write (id: string, disk: string, offset: number, bytes: Uint8Array): Promise<void> {
    const vm = await this.running(id)
    const size = this.sizeOf(vm, disk)
    if (offset < 0 || offset + bytes.length > size) throw new RangeError(`VM ${id}: write past the end of ${disk} (${size} bytes)`)
    const r = this.replica(id)
    const blocks = r.disks.get(disk) ?? new Map<number, Uint8Array>()
    r.disks.set(disk, blocks)
    for (let pos = offset; pos < offset + bytes.length;) {
      const index = Math.floor(pos / SIM_BLOCK_BYTES)
      const start = pos - index * SIM_BLOCK_BYTES
      const n = Math.min(SIM_BLOCK_BYTES - start, offset + bytes.length - pos)
      const block = new Uint8Array(SIM_BLOCK_BYTES)
      const old = blocks.get(index)
      if (old !== undefined) block.set(old)
      block.set(bytes.subarray(pos - offset, pos - offset + n), start)
      blocks.set(index, block)
      if (r.active) { const d = r.dirty.get(disk) ?? new Set<number>(); d.add(index); r.dirty.set(disk, d) }
      pos += n
    }
  }

  async startReplication (id: string): Promise<ReplicationStatus> {
    await this.init.inspect(id)
    this.replica(id).active = true
    return await this.replicationStatus(id)
  }

  async takePoint (id: string, options: TakePointOptions): Promise<ReplicationPoint> {
    const t0 = Date.now()
    const vm = await this.running(id)
    const r = this.replica(id)
    const kind: PointKind = options.kind
    if (kind === 'incremental' && (!r.active || r.lastSeq === 0)) throw new ReplicationNeedsFullError(`VM ${id}: no incremental point possible before a full one`)
    r.active = true
    const seq = r.lastSeq + 1
    const seed = kind === 'full' && options.seed === true && r.lastSeq > 0
    const base = r.bitmapBase ?? r.lastSeq
    const blocks = new Map<string, Map<number, Uint8Array>>()
    let bytes = 0
    let dirtyBytes = 0
    for (const d of vm.spec.disks ?? []) {
      const all = r.disks.get(d.name) ?? new Map<number, Uint8Array>()
      const picked = kind === 'full' ? new Map(all) : new Map([...(r.dirty.get(d.name) ?? [])].map((i) => [i, all.get(i) ?? new Uint8Array(SIM_BLOCK_BYTES)]))
      blocks.set(d.name, picked)
      bytes += picked.size * SIM_BLOCK_BYTES
      dirtyBytes += kind === 'full' ? d.sizeMiB * 1024 * 1024 : (r.dirty.get(d.name)?.size ?? 0) * SIM_BLOCK_BYTES
      if (!seed) r.dirty.set(d.name, new Set())
    }
    const takenAt = Date.now()
    if (this.pointLatencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.pointLatencyMs))
    const point: ReplicationPoint = {
      id, seq, kind, baseSeq: kind === 'full' ? 0 : base, seed, takenAt,
      disks: (vm.spec.disks ?? []).map((d) => ({ name: d.name, sizeBytes: d.sizeMiB * 1024 * 1024, file: `sim:${id}/${seq}/${d.name}`, copiedBytes: (blocks.get(d.name)?.size ?? 0) * SIM_BLOCK_BYTES })),
      bytes, dirtyBytes, durationMs: Date.now() - t0, transactionMs: 0
    }
    r.points.set(seq, { point, blocks })
    r.lastSeq = seq
    r.bitmapBase = seed ? base : seq
    return point
  }

  async openPoint (id: string, seq: number): Promise<PointData> {
    const p = this.replica(id).points.get(seq)
    if (p === undefined) throw new PointNotFoundError(`point ${seq} of VM ${id} is not on this host`)
    const extents: PointExtent[] = []
    for (const [disk, blocks] of p.blocks) {
      for (const index of [...blocks.keys()].sort((a, b) => a - b)) extents.push({ disk, offset: index * SIM_BLOCK_BYTES, length: SIM_BLOCK_BYTES, zero: false })
    }
    return {
      point: p.point,
      extents,
      read: async (disk, offset, length) => {
        const index = Math.floor(offset / SIM_BLOCK_BYTES)
        const block = p.blocks.get(disk)?.get(index)
        const start = offset - index * SIM_BLOCK_BYTES
        if (block === undefined || start + length > SIM_BLOCK_BYTES) throw new RangeError(`point ${seq} of VM ${id}: ${disk} [${offset}, +${length}) is not inside one extent`)
        return block.slice(start, start + length)
      },
      close: async () => {}
    }
  }

  async releasePoint (id: string, seq: number): Promise<void> {
    const r = this.replica(id)
    for (const s of [...r.points.keys()]) if (s <= seq) r.points.delete(s)
  }

  async stopReplication (id: string): Promise<void> {
    const r = this.replica(id)
    r.active = false
    r.dirty.clear()
    r.points.clear()
  }

  async replicationStatus (id: string, _options?: AbortOptions): Promise<ReplicationStatus> {
    const r = this.replica(id)
    let dirty = 0
    for (const d of r.dirty.values()) dirty += d.size * SIM_BLOCK_BYTES
    return { id, active: r.active, lastSeq: r.lastSeq, bitmapBase: r.bitmapBase ?? r.lastSeq, points: [...r.points.keys()].sort((a, b) => a - b), dirtyBytes: dirty, needsFull: !r.active || r.lastSeq === 0 }
  }

  private replica (id: string): SimReplica {
    let r = this.vms.get(id)
    if (r === undefined) {
      r = { active: false, lastSeq: 0, disks: new Map(), dirty: new Map(), points: new Map() }
      this.vms.set(id, r)
    }
    return r
  }

  private async running (id: string): Promise<VmInfo> {
    const vm = await this.init.inspect(id)
    if (vm.state !== 'running') throw new WrongStateError(`VM ${id} is ${vm.state}: points are taken of a running guest`)
    return vm
  }

  private sizeOf (vm: VmInfo, disk: string): number {
    const d = vm.spec.disks?.find((x) => x.name === disk)
    if (d === undefined) throw new RangeError(`VM ${vm.id} has no disk ${disk}`)
    return d.sizeMiB * 1024 * 1024
  }
}
