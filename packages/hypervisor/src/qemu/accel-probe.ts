import { constants } from 'node:fs'
import { access, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { release } from 'node:os'
import { dirname } from 'node:path'
import { loadExeca } from '../lazy-execa.js'
import { DEFAULT_CPU_MODEL, MACHINE_TYPE } from '../constants.js'
import { QemuMissingError } from '../errors.js'
import type { AbortOptions, Accelerator } from '../types.js'
import { qemuVersion } from './fingerprint.js'

export interface AcceleratorProbeOptions extends AbortOptions {
  /** Kernel and initrd of a guest that prints `marker` on ttyS0 (the test guest with `meshvirt.probe=1`). */
  kernel: string
  initrd?: string
  /** Kernel command line; the default makes the test guest print its marker and power off at once. */
  cmdline?: string
  marker?: string
  /** Where the answer is cached, e.g. `<dataDir>/accel-probe.json`. No caching when omitted. */
  cacheFile?: string
  qemuBinary?: string
  /** A KVM guest that works boots in well under a second; a broken one hangs. */
  timeoutMs?: number
  cpuModel?: string
  memoryMiB?: number
}

export interface AcceleratorProbeResult {
  accel: Accelerator
  /** Why: e.g. "KVM guest printed MESHVIRT-READY in 640 ms" or "no marker within 8000 ms under KVM". */
  reason: string
  /** Time to the marker under KVM, when it came. */
  bootMs?: number
  probedAt: string
  /** The conditions the answer holds for; a change (QEMU upgrade, new host kernel) probes again. */
  key: string
  cached: boolean
}

export const PROBE_TIMEOUT_MS = 8_000
export const PROBE_MARKER = 'MESHVIRT-READY'

/**
 * Decide KVM or TCG by booting a real guest under KVM. `/dev/kvm` can exist, and even create VMs,
 * while never getting a Linux guest to userspace (nested, software-assisted KVM): only a boot
 * that reaches the marker proves KVM works. Anything else falls back to TCG.
 */
export async function probeAccelerator (options: AcceleratorProbeOptions): Promise<AcceleratorProbeResult> {
  const qemu = options.qemuBinary ?? 'qemu-system-x86_64'
  const version = await qemuVersion(qemu, options)
  const key = `qemu ${version}; host kernel ${release()}; guest ${options.kernel}; cpu ${options.cpuModel ?? DEFAULT_CPU_MODEL}`
  if (options.cacheFile !== undefined) {
    const cached = await readCache(options.cacheFile)
    if (cached?.key === key) return { ...cached, cached: true }
  }
  const result = await bootUnderKvm(qemu, key, options)
  if (options.cacheFile !== undefined) await writeCache(options.cacheFile, result)
  return result
}

async function bootUnderKvm (qemu: string, key: string, options: AcceleratorProbeOptions): Promise<AcceleratorProbeResult> {
  const probedAt = new Date().toISOString()
  const tcg = (reason: string): AcceleratorProbeResult => ({ accel: 'tcg', reason, probedAt, key, cached: false })
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK)
  } catch {
    return tcg('/dev/kvm is absent or not readable and writable by this user')
  }
  const marker = options.marker ?? PROBE_MARKER
  const timeoutMs = options.timeoutMs ?? PROBE_TIMEOUT_MS
  const argv = [
    '-machine', `${MACHINE_TYPE},accel=kvm`, '-cpu', options.cpuModel ?? DEFAULT_CPU_MODEL,
    '-m', String(options.memoryMiB ?? 128), '-smp', '1',
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-serial', 'stdio', '-kernel', options.kernel,
    '-append', options.cmdline ?? 'console=ttyS0 panic=-1 quiet meshvirt.probe=1'
  ]
  if (options.initrd !== undefined) argv.push('-initrd', options.initrd)
  const started = performance.now()
  const child = (await loadExeca())(qemu, argv, { reject: false, stdin: 'ignore', all: true, buffer: false, cancelSignal: options.signal, forceKillAfterDelay: 1000 })
  let output = ''
  const sawMarker = new Promise<number | undefined>((resolve) => {
    const timer = setTimeout(() => { resolve(undefined) }, timeoutMs)
    child.all?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-4096)
      if (output.includes(marker)) { clearTimeout(timer); resolve(performance.now() - started) }
    })
    void child.then(() => { clearTimeout(timer); resolve(output.includes(marker) ? performance.now() - started : undefined) })
  })
  const bootMs = await sawMarker
  child.kill('SIGKILL')
  const exit = await child
  if (exit.code === 'ENOENT') throw new QemuMissingError(`${qemu} not found: install qemu-system-x86 (scripts/install-system-deps)`)
  if (bootMs !== undefined) {
    return { accel: 'kvm', reason: `a KVM guest printed ${marker} in ${Math.round(bootMs)} ms`, bootMs: Math.round(bootMs), probedAt, key, cached: false }
  }
  const said = output.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('qemu-system')).slice(-1)[0]
  return tcg(`no ${marker} within ${timeoutMs} ms under KVM${said !== undefined ? ` (${said})` : ''}`)
}

async function readCache (file: string): Promise<AcceleratorProbeResult | undefined> {
  try {
    const value = JSON.parse(await readFile(file, 'utf8')) as AcceleratorProbeResult
    return value.accel === 'kvm' || value.accel === 'tcg' ? value : undefined
  } catch {
    return undefined
  }
}

async function writeCache (file: string, result: AcceleratorProbeResult): Promise<void> {
  await mkdir(dirname(file), { recursive: true })
  const tmp = `${file}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify({ ...result, cached: undefined }, null, 2) + '\n')
  await rename(tmp, file)
}
