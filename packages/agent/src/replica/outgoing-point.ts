import type { PointData } from '@meshvirt/hypervisor'
import { planChunks, planBytes, type ChunkPlan, type ChunkLimits } from './chunk-plan.js'
import { chunkDigest, pointDigest } from './digest.js'
import type { ReplicaChunk, ReplicaPointHeader } from './types.js'

export interface OutgoingPointInit extends ChunkLimits {
  /** The owner's epoch for this VM (fencing: holders refuse older epochs). */
  epoch: number
  /** The library image a disk of the point is a layer on (`PointDisk.onBase`): holders start from it. */
  baseDigest?: string
}

/**
 * A point on the owner, ready to ship to any number of holders: its header, its chunk plan and the
 * chunk digests learnt so far (kept across attempts, so a resumed transfer need not re-read the
 * chunks the holder already has to compute the point digest).
 */
export class OutgoingPoint {
  readonly header: ReplicaPointHeader
  readonly plans: readonly ChunkPlan[]
  private readonly digests: Array<Uint8Array | undefined>

  constructor (readonly data: PointData, init: OutgoingPointInit) {
    const p = data.point
    this.plans = planChunks(data.extents.map((e) => ({ disk: e.disk, offset: e.offset, length: e.length, zero: e.zero })), init)
    this.digests = new Array(this.plans.length).fill(undefined)
    this.header = {
      vmId: p.id, epoch: init.epoch, seq: p.seq, baseSeq: p.baseSeq, kind: p.kind,
      disks: p.disks.map((d) => {
        if (d.onBase !== true) return { name: d.name, sizeBytes: d.sizeBytes }
        if (init.baseDigest === undefined || init.baseDigest === '') throw new Error(`point ${p.seq} of ${p.id}: disk ${d.name} is a layer on a base image, but which one is not known`)
        return { name: d.name, sizeBytes: d.sizeBytes, baseDigest: init.baseDigest }
      }),
      takenAt: p.takenAt, chunkCount: this.plans.length, dataBytes: planBytes(this.plans)
    }
  }

  /** Reads and checksums one chunk. */
  async chunk (plan: ChunkPlan): Promise<ReplicaChunk> {
    const data = await readPlan(this.data, plan)
    const sha256 = chunkDigest(plan.index, plan.extents, data)
    this.digests[plan.index] = sha256
    return { index: plan.index, extents: plan.extents, data, sha256 }
  }

  /** The digests of chunks [0, upTo): cached, or read and hashed (a resume after an owner restart). */
  async digestsUpTo (upTo: number): Promise<void> {
    for (const plan of this.plans.slice(0, upTo)) {
      if (this.digests[plan.index] === undefined) await this.chunk(plan)
    }
  }

  /** The point digest; every chunk digest must be known (all sent or hashed). */
  digest (): Uint8Array {
    const all = this.digests.map((d, i) => {
      if (d === undefined) throw new Error(`point ${this.header.seq}: chunk ${i} has not been hashed yet`)
      return d
    })
    return pointDigest(this.header, all)
  }

  async close (): Promise<void> {
    await this.data.close()
  }
}

/** The non-zero extents' bytes of a chunk, in order, in one buffer. */
async function readPlan (data: PointData, plan: ChunkPlan): Promise<Uint8Array> {
  const out = Buffer.allocUnsafe(plan.dataBytes)
  let at = 0
  for (const e of plan.extents) {
    if (e.zero) continue
    const bytes = await data.read(e.disk, e.offset, e.length)
    out.set(bytes, at)
    at += bytes.length
  }
  return out
}
