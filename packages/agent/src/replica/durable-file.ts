import { open, rename } from 'node:fs/promises'
import { dirname } from 'node:path'

/** Write `text` to `path` so that a crash leaves the old content or the new: temp file, fsync, rename, fsync the dir. */
export async function writeDurably (path: string, text: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`
  const fh = await open(tmp, 'w')
  try {
    await fh.writeFile(text)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, path)
  await syncDir(dirname(path))
}

/** A rename is durable only once its directory is synced. */
export async function syncDir (dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try { await fh.sync() } finally { await fh.close() }
}
