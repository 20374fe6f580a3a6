import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CorruptRecordError, DiskFullError } from '../errors.js'
import type { DiskMode } from '../migration/types.js'
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
  /**
   * Set while this host holds a paused QEMU waiting for an incoming migration (`created` until
   * completeIncoming): after an agent restart it tells the leftover apart from a VM never started.
   */
  incoming?: { disks: DiskMode, since: string }
}

export async function readRecord (dir: string): Promise<VmRecord | undefined> {
  let text: string
  try {
    text = await readFile(recordPath(dir), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    return JSON.parse(text) as VmRecord
  } catch (err) {
    throw new CorruptRecordError(`${recordPath(dir)} is not valid JSON: restore it or destroy the VM dir by hand`, { cause: err })
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

/** Ids of the VM dirs that hold a record (a dir with an unreadable record is listed: inspect says why). */
export async function listRecordIds (vmsDir: string): Promise<string[]> {
  const entries = await readdir(vmsDir, { withFileTypes: true }).catch(() => [])
  const ids: string[] = []
  for (const e of entries) {
    if (!e.isDirectory()) continue
    const present = await readRecord(join(vmsDir, e.name)).then((r) => r !== undefined, () => true)
    if (present) ids.push(e.name)
  }
  return ids.sort()
}

export function asDiskFull (err: unknown, what: string): unknown {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOSPC' || code === 'EDQUOT') return new DiskFullError(`cannot ${what}: the data dir's file system is full; free space or use another data dir`, { cause: err })
  return err
}
