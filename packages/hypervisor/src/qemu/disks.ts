import { constants } from 'node:fs'
import { access } from 'node:fs/promises'
import { loadExeca } from '../lazy-execa.js'
import { DiskFullError, ImageMissingError, InvalidSpecError, QemuMissingError } from '../errors.js'
import type { AbortOptions } from '../types.js'
import { inspectImage } from './image-info.js'

const MIB = 2 ** 20

export interface CreateDiskOptions extends AbortOptions {
  qemuImg: string
  path: string
  sizeMiB: number
  /** Base image used as the backing file (copy-on-write); its format is detected by qemu-img. */
  base?: string
  /** An image whose contents become the disk's (a standalone copy; see DiskSpec.importFrom). */
  importFrom?: string
}

/** Create a qcow2 disk with qemu-img: blank, a thin overlay on a base image, or a copy of an image. */
export async function createDisk (options: CreateDiskOptions): Promise<void> {
  if (options.importFrom !== undefined) { await importDisk(options, options.importFrom); return }
  const args = ['create', '-q', '-f', 'qcow2']
  if (options.base !== undefined) {
    try { await access(options.base) } catch {
      throw new ImageMissingError(`base image ${options.base} does not exist: build or copy it first`)
    }
    const { format, virtualSizeBytes: virtualSize } = await inspectImage(options.base, { qemuImg: options.qemuImg, signal: options.signal })
    // qemu-img makes a smaller overlay without a word, and the guest then finds its root file
    // system cut short (a 2 GiB cloud image under a 32M disk: ext4 refuses to mount).
    const baseMiB = Math.ceil(virtualSize / MIB)
    if (options.sizeMiB < baseMiB) {
      throw new InvalidSpecError(`the VM's disk (${options.sizeMiB} MiB) is smaller than its base image ${options.base} (${baseMiB} MiB): give it a disk of at least ${baseMiB} MiB (--disk ${baseMiB}M)`)
    }
    args.push('-b', options.base, '-F', format)
  }
  args.push(options.path, `${options.sizeMiB}M`)
  const result = await (await loadExeca())(options.qemuImg, args, { reject: false, cancelSignal: options.signal, stdin: 'ignore' })
  if (result.failed) throw diskError(options.qemuImg, result, `create ${options.path}`)
}

/** The image converted to a standalone qcow2 (zeros stay sparse), grown to `sizeMiB` if smaller. */
async function importDisk (options: CreateDiskOptions, from: string): Promise<void> {
  try { await access(from) } catch {
    throw new ImageMissingError(`image ${from} to import does not exist`)
  }
  const { format } = await inspectImage(from, { qemuImg: options.qemuImg, signal: options.signal })
  const converted = await (await loadExeca())(options.qemuImg, ['convert', '-q', '-f', format, '-O', 'qcow2', from, options.path], { reject: false, cancelSignal: options.signal, stdin: 'ignore' })
  if (converted.failed) throw diskError(options.qemuImg, converted, `import ${from} into ${options.path}`)
  const info = await (await loadExeca())(options.qemuImg, ['info', '--output=json', options.path], { reject: false, cancelSignal: options.signal, stdin: 'ignore' })
  if (info.failed) throw diskError(options.qemuImg, info, `inspect ${options.path}`)
  const virtualSize = Number((JSON.parse(String(info.stdout)) as { 'virtual-size'?: number })['virtual-size'] ?? 0)
  if (virtualSize < options.sizeMiB * 2 ** 20) await growDisk({ ...options, path: options.path })
}

/** A qcow2 disk of a VM that is not running, grown to `sizeMiB` (the new space reads as zeros). */
export async function growDisk (options: { qemuImg: string, path: string, sizeMiB: number } & AbortOptions): Promise<void> {
  const grown = await (await loadExeca())(options.qemuImg, ['resize', '-q', '-f', 'qcow2', options.path, `${options.sizeMiB}M`], { reject: false, cancelSignal: options.signal, stdin: 'ignore' })
  if (grown.failed) throw diskError(options.qemuImg, grown, `grow ${options.path} to ${options.sizeMiB} MiB`)
}

export function diskError (qemuImg: string, result: { code?: string, stderr?: unknown, shortMessage?: string }, what: string): Error {
  const stderr = String(result.stderr ?? '')
  if (result.code === 'ENOENT') return new QemuMissingError(`${qemuImg} not found: install qemu-utils (scripts/install-system-deps)`)
  if (/No space left on device/i.test(stderr)) return new DiskFullError(`cannot ${what}: the data dir's file system is full; free space or use another data dir`)
  if (/No such file or directory|Could not open/i.test(stderr)) return new ImageMissingError(`cannot ${what}: ${stderr.trim()}`)
  return new Error(`qemu-img could not ${what}: ${stderr.trim() || result.shortMessage}`)
}

/** Whether this process may read the file (a kernel, an initrd). */
export async function readable (file: string): Promise<boolean> {
  try { await access(file, constants.R_OK); return true } catch { return false }
}
