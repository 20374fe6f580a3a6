import { mkdir, open, readFile, rename, stat, chmod } from 'node:fs/promises'
import { join } from 'node:path'

/** Owner-only: the data dir holds the host's identity key and the cluster key. */
const DIR_MODE = 0o700
const SECRET_MODE = 0o600

export class DataDirError extends Error {
  override readonly name = 'DataDirError'
  readonly code = 'DATA_DIR'
}

/** The agent's data dir: creates it owner-only, and makes an existing one owner-only. */
export async function prepareDataDir (dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: DIR_MODE })
    const st = await stat(dir)
    if (!st.isDirectory()) throw new DataDirError(`data dir ${dir} is not a directory`)
    // Owner-only, also for a dir made by hand (0755 would leave state.db readable by local users).
    if ((st.mode & 0o077) !== 0) await chmod(dir, DIR_MODE)
  } catch (err) {
    if (err instanceof DataDirError) throw err
    throw new DataDirError(`cannot use data dir ${dir}: ${(err as Error).message} (pick another with --data-dir)`)
  }
}

/** Writes a file so that a crash leaves either the old or the new content, never a torn one. */
export async function writeFileAtomic (path: string, data: Uint8Array | string, mode = SECRET_MODE): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  const fh = await open(tmp, 'w', mode)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, path)
}

export async function readOptional (path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/**
 * The host's incarnation: one more than the last start's, persisted before the agent joins,
 * so peers can tell a restarted host from a stale advert of its previous life.
 */
export async function nextIncarnation (dir: string): Promise<number> {
  const path = join(dir, 'incarnation')
  const previous = Number((await readOptional(path))?.toString('utf8').trim() ?? '0')
  const next = (Number.isSafeInteger(previous) && previous > 0 ? previous : 0) + 1
  await writeFileAtomic(path, `${next}\n`, 0o644)
  return next
}
