import { access } from 'node:fs/promises'
import { execa } from 'execa'
import { DiskFullError, ImageMissingError, QemuMissingError } from '../errors.js'
import type { AbortOptions } from '../types.js'

export interface CreateDiskOptions extends AbortOptions {
  qemuImg: string
  path: string
  sizeMiB: number
  /** Base image used as the backing file (copy-on-write); its format is detected by qemu-img. */
  base?: string
}

/** Create a qcow2 disk with qemu-img: blank, or a thin overlay on a base image. */
export async function createDisk (options: CreateDiskOptions): Promise<void> {
  const args = ['create', '-q', '-f', 'qcow2']
  if (options.base !== undefined) {
    try { await access(options.base) } catch {
      throw new ImageMissingError(`base image ${options.base} does not exist: build or copy it first`)
    }
    const format = await imageFormat(options.qemuImg, options.base, options)
    args.push('-b', options.base, '-F', format)
  }
  args.push(options.path, `${options.sizeMiB}M`)
  const result = await execa(options.qemuImg, args, { reject: false, cancelSignal: options.signal, stdin: 'ignore' })
  if (result.failed) throw diskError(options.qemuImg, result, `create ${options.path}`)
}

async function imageFormat (qemuImg: string, path: string, options: AbortOptions): Promise<string> {
  const result = await execa(qemuImg, ['info', '--output=json', path], { reject: false, cancelSignal: options.signal, stdin: 'ignore' })
  if (result.failed) throw diskError(qemuImg, result, `inspect ${path}`)
  const info = JSON.parse(String(result.stdout)) as { format?: string }
  return info.format ?? 'raw'
}

function diskError (qemuImg: string, result: { code?: string, stderr?: unknown, shortMessage?: string }, what: string): Error {
  const stderr = String(result.stderr ?? '')
  if (result.code === 'ENOENT') return new QemuMissingError(`${qemuImg} not found: install qemu-utils (scripts/install-system-deps)`)
  if (/No space left on device/i.test(stderr)) return new DiskFullError(`cannot ${what}: the data dir's file system is full; free space or use another data dir`)
  if (/No such file or directory|Could not open/i.test(stderr)) return new ImageMissingError(`cannot ${what}: ${stderr.trim()}`)
  return new Error(`qemu-img could not ${what}: ${stderr.trim() || result.shortMessage}`)
}
