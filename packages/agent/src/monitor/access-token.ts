import { randomBytes, timingSafeEqual } from 'node:crypto'
import { chmod, readFile, writeFile } from 'node:fs/promises'

/**
 * The bearer token of the agent's HTTP endpoints (metrics, dashboard), kept in a 0600 file in the
 * data dir: whoever may read the data dir may watch the cluster, as with the control socket.
 * Created on first use; an existing file is kept, so scrape configs survive restarts.
 */
export async function loadOrCreateToken (file: string): Promise<string> {
  try {
    const token = (await readFile(file, 'utf8')).trim()
    if (token.length >= 16) return token
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const token = randomBytes(32).toString('hex')
  await writeFile(file, token + '\n', { mode: 0o600 })
  await chmod(file, 0o600)
  return token
}

/** Compares in constant time, so the token cannot be guessed byte by byte from response times. */
export function tokenMatches (expected: string, given: string | undefined): boolean {
  if (given === undefined) return false
  const a = Buffer.from(expected)
  const b = Buffer.from(given)
  return a.length === b.length && timingSafeEqual(a, b)
}
