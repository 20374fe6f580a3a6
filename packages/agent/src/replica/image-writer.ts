import { open, type FileHandle } from 'node:fs/promises'
import type { ReplicaChunk } from './types.js'

const ZEROS = new Uint8Array(1024 * 1024)

/**
 * Writes chunks into a holder's raw disk images (one sparse file per disk): each extent's bytes at
 * its guest offset, zero extents as zeros. Raw, because Node can write it in place, and QEMU boots it
 * as the backing file of a thin qcow2 overlay when the replica has to run.
 */
export class ImageWriter {
  private readonly files = new Map<string, FileHandle>()

  private constructor () {}

  /**
   * `fresh`: create (or empty) the file at its size (a full point's disk); else open the existing
   * image (an incremental's, or a full point's laid down from its base image), growing one that is
   * smaller than its disk now is (the VM's disk grew: zeros at its end).
   */
  static async open (paths: ReadonlyMap<string, { path: string, sizeBytes: number, fresh: boolean }>): Promise<ImageWriter> {
    const w = new ImageWriter()
    try {
      for (const [disk, { path, sizeBytes, fresh }] of paths) {
        const fh = await open(path, fresh ? 'w+' : 'r+')
        w.files.set(disk, fh)
        if (fresh || (await fh.stat()).size < sizeBytes) await fh.truncate(sizeBytes)
      }
    } catch (err) {
      await w.close()
      throw err
    }
    return w
  }

  async write (chunk: ReplicaChunk): Promise<void> {
    let at = 0
    for (const e of chunk.extents) {
      const fh = this.files.get(e.disk)
      if (fh === undefined) throw new RangeError(`chunk ${chunk.index} writes disk ${e.disk}, which the point does not have`)
      if (e.zero) {
        for (let done = 0; done < e.length;) {
          const n = Math.min(ZEROS.length, e.length - done)
          await writeAll(fh, ZEROS.subarray(0, n), e.offset + done)
          done += n
        }
      } else {
        await writeAll(fh, chunk.data.subarray(at, at + e.length), e.offset)
        at += e.length
      }
    }
  }

  async sync (): Promise<void> {
    for (const fh of this.files.values()) await fh.sync()
  }

  async close (): Promise<void> {
    for (const fh of this.files.values()) await fh.close().catch(() => {})
    this.files.clear()
  }
}

async function writeAll (fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position + done)
    done += bytesWritten
  }
}
