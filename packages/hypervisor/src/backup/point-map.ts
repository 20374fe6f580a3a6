import type { PointExtent, PointKind } from './types.js'

/** One entry of `qemu-img map --output=json` (QEMU 7.2). */
export interface QemuMapEntry {
  start: number
  length: number
  depth: number
  /** Allocated in this image (absent before QEMU 6.2). */
  present?: boolean
  zero: boolean
  data: boolean
  /** Host offset of the data in the image file (raw clusters only: never for compressed ones). */
  offset?: number
}

/**
 * The extents a point defines, from the map of its backup target. A full target holds the whole
 * disk: only its data regions need shipping (the holder starts from zeros). An incremental target
 * is a fresh image the job wrote only the dirty clusters into, so what is allocated in it (`present`)
 * is exactly what changed, and a changed region that reads as zeros is shipped as a zero extent.
 */
export function pointExtents (disk: string, kind: PointKind, entries: readonly QemuMapEntry[]): PointExtent[] {
  const extents: PointExtent[] = []
  for (const e of entries) {
    if (e.length <= 0 || e.depth !== 0) continue
    const changed = kind === 'full' ? e.data : (e.present ?? e.data)
    if (!changed) continue
    if (e.data) {
      if (e.offset === undefined) throw new TypeError(`qemu-img map of disk ${disk}: data at ${e.start} has no host offset (compressed?)`)
      extents.push({ disk, offset: e.start, length: e.length, zero: false, fileOffset: e.offset })
    } else {
      extents.push({ disk, offset: e.start, length: e.length, zero: true })
    }
  }
  return extents
}

/** Sum of the non-zero extents' lengths: the bytes a point ships. */
export function dataBytes (extents: readonly PointExtent[]): number {
  let total = 0
  for (const e of extents) if (!e.zero) total += e.length
  return total
}
