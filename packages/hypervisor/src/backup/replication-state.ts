import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CorruptRecordError } from '../errors.js'

/** What the QEMU driver keeps per replicated VM in `<vm dir>/replica/state.json`. */
export interface ReplicationState {
  version: 1
  active: boolean
  /** Seq of the last point that completed. */
  lastSeq: number
  /**
   * Seq of a point whose transaction may have run without its completion being recorded: the
   * bitmap may have been cleared for changes no point holds, so the next point must be full.
   */
  pending?: number
  /** A full point failed after its transaction cleared the bitmap. */
  needsFull?: boolean
  /** The point since which the bitmap counts changes (absent: lastSeq, as before seed points existed). */
  bitmapBase?: number
}

export const REPLICA_DIR = 'replica'

export function replicaDir (vmDir: string): string {
  return join(vmDir, REPLICA_DIR)
}

export async function readReplicationState (vmDir: string): Promise<ReplicationState> {
  const path = join(replicaDir(vmDir), 'state.json')
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, active: false, lastSeq: 0 }
    throw err
  }
  try {
    return JSON.parse(text) as ReplicationState
  } catch (err) {
    throw new CorruptRecordError(`${path} is not valid JSON: remove it (the next point will be full)`, { cause: err })
  }
}

/** Written to a temp file and renamed: a crash leaves the old state or the new, never half of one. */
export async function writeReplicationState (vmDir: string, state: ReplicationState): Promise<void> {
  const dir = replicaDir(vmDir)
  await mkdir(dir, { recursive: true })
  const tmp = join(dir, 'state.json.tmp')
  await writeFile(tmp, JSON.stringify(state))
  await rename(tmp, join(dir, 'state.json'))
}
