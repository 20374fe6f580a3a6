import { readFile, rename, stat, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { HostNetworkError } from './types.js'

/** Writes through a temporary file and a rename (dnsmasq never reads half a file); false when unchanged. */
export async function writeIfChanged (file: string, text: string): Promise<boolean> {
  if (await readFile(file, 'utf8').catch(() => undefined) === text) return false
  await writeFile(`${file}.tmp`, text, { mode: 0o644 })
  await rename(`${file}.tmp`, file)
  return true
}

/**
 * dnsmasq drops root after start and re-reads its hosts files on SIGHUP as an unprivileged user:
 * under a directory others cannot search it fails quietly ("Permission denied" in its log only,
 * measured with a 0700 stateDir), and guests get no lease. So refuse such a directory up front.
 */
export async function assertSearchable (dir: string): Promise<void> {
  let d = resolve(dir)
  for (;;) {
    const mode = (await stat(d)).mode
    if ((mode & 0o001) === 0) {
      throw new HostNetworkError(`${d} is not searchable by other users (mode ${(mode & 0o777).toString(8)}), so dnsmasq could not re-read its files under it after dropping root: chmod o+x ${d} or use another stateDir`)
    }
    const parent = dirname(d)
    if (parent === d) return
    d = parent
  }
}
