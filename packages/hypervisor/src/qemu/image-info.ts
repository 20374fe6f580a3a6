import { loadExeca } from '../lazy-execa.js'
import { ImageMissingError, QemuMissingError } from '../errors.js'

/** What `qemu-img info` says of an image file. */
export interface ImageInfo {
  /** qemu-img's format name: raw, qcow2, vmdk, … */
  format: string
  virtualSizeBytes: number
  /** The file it reads through, if any (an overlay is not a standalone image). */
  backingFile?: string
}

/** `qemu-img info` of a file; throws ImageMissingError when qemu-img cannot open it. */
export async function inspectImage (path: string, options: { qemuImg?: string, signal?: AbortSignal } = {}): Promise<ImageInfo> {
  const qemuImg = options.qemuImg ?? 'qemu-img'
  const result = await (await loadExeca())(qemuImg, ['info', '--output=json', path], { reject: false, cancelSignal: options.signal, stdin: 'ignore' })
  if (result.code === 'ENOENT') throw new QemuMissingError(`${qemuImg} not found: install qemu-utils (scripts/install-system-deps)`)
  if (result.failed) throw new ImageMissingError(`qemu-img cannot read ${path}: ${String(result.stderr).trim() || result.shortMessage}`)
  const info = JSON.parse(String(result.stdout)) as { format?: string, 'virtual-size'?: number, 'backing-filename'?: string }
  return {
    format: info.format ?? 'raw',
    virtualSizeBytes: Number(info['virtual-size'] ?? 0),
    ...(info['backing-filename'] !== undefined ? { backingFile: info['backing-filename'] } : {})
  }
}
