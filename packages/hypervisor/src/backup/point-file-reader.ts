import { open, type FileHandle } from 'node:fs/promises'
import { PointNotFoundError } from './errors.js'
import type { PointData, PointExtent, ReplicationPoint } from './types.js'

/**
 * Reads a QEMU point straight from its qcow2 files: `qemu-img map` gave each data extent's host
 * offset, and an uncompressed, unencrypted qcow2 data cluster is the guest's bytes as they are, so
 * no NBD export or qemu-io round trip is needed to ship a point.
 */
export class PointFileReader implements PointData {
  private constructor (
    readonly point: ReplicationPoint,
    readonly extents: readonly PointExtent[],
    private readonly files: Map<string, FileHandle>,
    private readonly byDisk: Map<string, PointExtent[]>
  ) {}

  static async open (point: ReplicationPoint, extents: PointExtent[]): Promise<PointFileReader> {
    const files = new Map<string, FileHandle>()
    const byDisk = new Map<string, PointExtent[]>()
    try {
      for (const disk of point.disks) files.set(disk.name, await open(disk.file, 'r'))
    } catch (err) {
      for (const f of files.values()) await f.close()
      throw new PointNotFoundError(`point ${point.seq} of VM ${point.id}: its files are gone (${String(err)})`, { cause: err })
    }
    for (const e of extents) {
      const list = byDisk.get(e.disk) ?? []
      list.push(e)
      byDisk.set(e.disk, list)
    }
    return new PointFileReader(point, extents, files, byDisk)
  }

  async read (disk: string, offset: number, length: number): Promise<Uint8Array> {
    const extent = findExtent(this.byDisk.get(disk) ?? [], offset)
    const file = this.files.get(disk)
    if (extent === undefined || file === undefined || extent.zero || extent.fileOffset === undefined || offset + length > extent.offset + extent.length) {
      throw new RangeError(`point ${this.point.seq} of VM ${this.point.id}: ${disk} [${offset}, +${length}) is not inside one data extent`)
    }
    const buf = Buffer.allocUnsafe(length)
    let done = 0
    while (done < length) {
      const { bytesRead } = await file.read(buf, done, length - done, extent.fileOffset + offset - extent.offset + done)
      if (bytesRead === 0) throw new RangeError(`point ${this.point.seq} of VM ${this.point.id}: ${disk} file ends before [${offset}, +${length})`)
      done += bytesRead
    }
    return buf
  }

  async close (): Promise<void> {
    for (const f of this.files.values()) await f.close()
    this.files.clear()
  }
}

/** The extent containing `offset` (extents sorted by offset, not overlapping). */
export function findExtent (extents: readonly PointExtent[], offset: number): PointExtent | undefined {
  let lo = 0
  let hi = extents.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const e = extents[mid] as PointExtent
    if (offset < e.offset) hi = mid - 1
    else if (offset >= e.offset + e.length) lo = mid + 1
    else return e
  }
  return undefined
}
