import { open, rm } from 'node:fs/promises'
import { loadExeca } from '../lazy-execa.js'
import type { AbortOptions } from '../types.js'
import { diskError } from './disks.js'

/**
 * Writes an image's guest-visible bytes as a sparse raw file at `target` (replacing it), grown to
 * `sizeBytes` when the image is smaller (the rest reads as zeros): a replica holder's starting point
 * for a disk that is a thin layer on that image. Nothing is left at `target` when it fails.
 */
export async function writeRawImage (source: string, options: { format: string, target: string, sizeBytes: number, qemuImg?: string } & AbortOptions): Promise<void> {
  const qemuImg = options.qemuImg ?? 'qemu-img'
  await rm(options.target, { force: true })
  try {
    const result = await (await loadExeca())(qemuImg, ['convert', '-q', '-f', options.format, '-O', 'raw', source, options.target], { reject: false, cancelSignal: options.signal, stdin: 'ignore' })
    if (result.failed) throw diskError(qemuImg, result, `write ${source} as raw ${options.target}`)
    const fh = await open(options.target, 'r+')
    try {
      if ((await fh.stat()).size < options.sizeBytes) await fh.truncate(options.sizeBytes)
    } finally {
      await fh.close()
    }
  } catch (err) {
    await rm(options.target, { force: true })
    throw err
  }
}
