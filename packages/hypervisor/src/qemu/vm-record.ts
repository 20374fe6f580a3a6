import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DiskFullError } from '../errors.js'
import type { Accelerator, ExitReason, VmSpec, VmState } from '../types.js'
import { recordPath } from './vm-paths.js'

/**
 * What the driver persists per VM (`vm.json` beside the pid file): enough for a new driver
 * instance to re-attach after an agent restart, as Nomad's QEMU driver keeps its task handle.
 */
export interface VmRecord {
  version: 1
  spec: VmSpec
  accel: Accelerator
  createdAt: string
  /** Last state this driver knew; `running` with a dead pid means it exited while detached. */
  state: VmState
  startedAt?: string
  exit?: { reason: ExitReason, at: string }
}

export async function readRecord (dir: string): Promise<VmRecord | undefined> {
  try {
    return JSON.parse(await readFile(recordPath(dir), 'utf8')) as VmRecord
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** Atomic replace (write + rename), so a kill -9 mid-write leaves the old record, never half a file. */
export async function writeRecord (dir: string, record: VmRecord): Promise<void> {
  const file = recordPath(dir)
  const tmp = `${file}.tmp`
  try {
    await mkdir(dir, { recursive: true })
    await writeFile(tmp, JSON.stringify(record, null, 2) + '\n')
    await rename(tmp, file)
  } catch (err) {
    throw asDiskFull(err, `write ${file}`)
  }
}

export async function listRecordIds (vmsDir: string): Promise<string[]> {
  try {
    const entries = await readdir(vmsDir, { withFileTypes: true })
    const ids: string[] = []
    for (const e of entries) {
      if (e.isDirectory() && await readRecord(join(vmsDir, e.name)) !== undefined) ids.push(e.name)
    }
    return ids.sort()
  } catch {
    return []
  }
}

export function asDiskFull (err: unknown, what: string): unknown {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOSPC' || code === 'EDQUOT') return new DiskFullError(`cannot ${what}: the data dir's file system is full; free space or use another data dir`, { cause: err })
  return err
}
