/** Test helpers for real-QEMU specs: the test guest, serial-log polling, and QEMU clean-up by pid. */
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'

export const REPO = fileURLToPath(new URL('../../..', import.meta.url))

export interface TestGuest {
  dir: string
  kernel: string
  initrd: string
  /** Base kernel command line of the test guest (serial console on ttyS0). */
  cmdline: string
}

/** Build (or reuse the cached) test guest with scripts/build-guest. */
export async function ensureGuest (): Promise<TestGuest> {
  const dir = process.env.MESHVIRT_GUEST_DIR ?? join(REPO, '.cache', 'guest')
  await execa('bash', [join(REPO, 'scripts', 'build-guest')], { env: { MESHVIRT_GUEST_DIR: dir }, timeout: 180_000 })
  const env = await readEnvFile(join(dir, 'guest.env'))
  return { dir, kernel: env.KERNEL as string, initrd: env.INITRD as string, cmdline: env.CMDLINE as string }
}

/** The Debian 12 cloud image of scripts/build-cloud-image (docs/cloud-image.md), for direct kernel boot. */
export interface CloudImage {
  dir: string
  /** The qcow2 root file system (the whole disk, no partition table). */
  image: string
  kernel: string
  initrd: string
  /** Its kernel command line: the root by UUID, the serial console on ttyS0. */
  cmdline: string
  /** The default user cloud-init gives the SSH keys to. */
  user: string
}

/** A cold build downloads and installs Debian: measured 6–10 min on 2 shared cores. */
const CLOUD_IMAGE_BUILD_TIMEOUT_MS = 20 * 60_000

/** Where the cloud image is cached (MESHVIRT_CLOUD_IMAGE_DIR, or .cache/cloud-image in the repository). */
function cloudImageDir (): string {
  return process.env.MESHVIRT_CLOUD_IMAGE_DIR ?? join(REPO, '.cache', 'cloud-image')
}

/**
 * Whether the cloud image suites should run, and if not why: they run where the image has been
 * built (a cache), or when MESHVIRT_CLOUD_E2E=1 asks for it to be built first (6–22 min cold here,
 * which a fresh CI clone cannot afford within its budget).
 */
export async function cloudImageWanted (): Promise<{ run: boolean, why: string }> {
  if (process.env.MESHVIRT_CLOUD_E2E === '1') return { run: true, why: 'MESHVIRT_CLOUD_E2E=1' }
  if (process.env.MESHVIRT_CLOUD_E2E === '0') return { run: false, why: 'MESHVIRT_CLOUD_E2E=0' }
  const env = await readFile(join(cloudImageDir(), 'cloud-image.env'), 'utf8').catch(() => '')
  if (env.includes('IMAGE=')) return { run: true, why: `the cloud image is cached in ${cloudImageDir()}` }
  return { run: false, why: `no cloud image in ${cloudImageDir()}: build it with scripts/build-cloud-image (6–22 min cold), or run with MESHVIRT_CLOUD_E2E=1` }
}

/**
 * Build (or reuse the cached) cloud image with scripts/build-cloud-image: cached and flock'd, so
 * parallel callers build once. Needs root (mmdebstrap --mode=root).
 */
export async function ensureCloudImage (): Promise<CloudImage> {
  const dir = cloudImageDir()
  await execa('bash', [join(REPO, 'scripts', 'build-cloud-image')], { env: { MESHVIRT_CLOUD_IMAGE_DIR: dir }, timeout: CLOUD_IMAGE_BUILD_TIMEOUT_MS })
  const env = await readEnvFile(join(dir, 'cloud-image.env'))
  return { dir, image: env.IMAGE as string, kernel: env.KERNEL as string, initrd: env.INITRD as string, cmdline: env.CMDLINE as string, user: env.USER as string }
}

/** KEY=VALUE lines, values unquoted (the build scripts' env files: read, never sourced). */
async function readEnvFile (path: string): Promise<Record<string, string>> {
  return Object.fromEntries((await readFile(path, 'utf8')).split('\n').filter((l) => l.includes('='))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
}

/** How long a match at the very end of a serial log must stay there to count (waitForSerial). */
const SERIAL_SETTLE_MS = 200

/** Poll a serial log until `pattern` matches (after `from` bytes); returns the match. Bounded. */
export async function waitForSerial (path: string, pattern: RegExp, timeoutMs: number, from = 0): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs
  let text = ''
  for (;;) {
    text = (await readFile(path, 'utf8').catch(() => '')).slice(from)
    const match = text.match(pattern)
    // QEMU writes the serial log a character at a time: a match that ends where the log ends may be
    // a line still being written ("MESHVIRT-DISK 42" of 4242). It counts once the log stops growing
    // there (a prompt waiting for input) or goes on past it (the match is read again, whole).
    if (match !== null && (match.index ?? 0) + match[0].length < text.length) return match
    if (match !== null) {
      await new Promise((resolve) => setTimeout(resolve, SERIAL_SETTLE_MS))
      const later = (await readFile(path, 'utf8').catch(() => '')).slice(from)
      if (later.length === text.length) return match
      continue
    }
    if (Date.now() > deadline) throw new Error(`no ${pattern} in ${path} within ${timeoutMs} ms; tail: ${text.slice(-400)}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** The last counter the guest printed, or -1. */
export async function lastCounter (serialLog: string): Promise<number> {
  const text = await readFile(serialLog, 'utf8').catch(() => '')
  const all = [...text.matchAll(/MESHVIRT-COUNTER (\d+)/g)]
  return all.length === 0 ? -1 : Number(all.at(-1)?.[1])
}

/** SIGKILL every QEMU still running under `dataDir` (found by pid file, checked against /proc). */
export async function killQemusUnder (dataDir: string): Promise<number[]> {
  const killed: number[] = []
  const vms = join(dataDir, 'vms')
  for (const id of await readdir(vms).catch(() => [] as string[])) {
    const pidFile = join(vms, id, 'qemu.pid')
    const pid = Number.parseInt(await readFile(pidFile, 'utf8').catch(() => ''), 10)
    if (!Number.isInteger(pid)) continue
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (!cmdline.split('\0').includes(pidFile)) continue
    try { process.kill(pid, 'SIGKILL'); killed.push(pid) } catch { /* already gone */ }
  }
  return killed
}

/** Whether a pid runs (a zombie awaiting its reaper counts as exited). */
export async function isRunning (pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined)
  return stat !== undefined && !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
}
