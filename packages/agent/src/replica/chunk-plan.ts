import { CHUNK_BYTES, MAX_CHUNK_EXTENTS } from './constants.js'
import type { ReplicaExtent } from './types.js'

export interface ChunkPlan {
  index: number
  extents: ReplicaExtent[]
  /** Bytes of data the chunk carries (its non-zero extents). */
  dataBytes: number
}

export interface ChunkLimits {
  chunkBytes?: number
  maxExtents?: number
}

/**
 * Cuts a point's extents into chunks of at most `chunkBytes` data and `maxExtents` extents: a data
 * extent longer than the room left is split across chunks; zero extents carry no data and only count
 * against `maxExtents`. Pure and deterministic: the sender can re-plan a point after a restart and
 * get the same chunks the holder already has.
 */
export function planChunks (extents: readonly ReplicaExtent[], limits: ChunkLimits = {}): ChunkPlan[] {
  const chunkBytes = limits.chunkBytes ?? CHUNK_BYTES
  const maxExtents = limits.maxExtents ?? MAX_CHUNK_EXTENTS
  if (!(chunkBytes > 0) || !(maxExtents > 0)) throw new RangeError('chunkBytes and maxExtents must be positive')
  const plans: ChunkPlan[] = []
  let current: ChunkPlan = { index: 0, extents: [], dataBytes: 0 }
  const roomFor = (needsData: boolean): void => {
    const full = current.extents.length >= maxExtents || (needsData && current.dataBytes >= chunkBytes)
    if (!full) return
    plans.push(current)
    current = { index: plans.length, extents: [], dataBytes: 0 }
  }
  for (const e of extents) {
    if (e.length <= 0) continue
    if (e.zero) {
      roomFor(false)
      current.extents.push({ ...e })
      continue
    }
    let offset = e.offset
    let left = e.length
    while (left > 0) {
      roomFor(true)
      const n = Math.min(left, chunkBytes - current.dataBytes)
      current.extents.push({ disk: e.disk, offset, length: n, zero: false })
      current.dataBytes += n
      offset += n
      left -= n
    }
  }
  if (current.extents.length > 0) plans.push(current)
  return plans
}

/** Total data bytes of a plan (what the point ships). */
export function planBytes (plans: readonly ChunkPlan[]): number {
  return plans.reduce((n, p) => n + p.dataBytes, 0)
}
