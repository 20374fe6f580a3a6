import { cpus, totalmem } from 'node:os'
import { hostCpu } from '../host-cpu.js'
import { loadExeca } from '../lazy-execa.js'
import { QemuMissingError } from '../errors.js'
import type { AbortOptions, Accelerator, HostFingerprint } from '../types.js'

export async function qemuVersion (qemu: string, options: AbortOptions = {}): Promise<string> {
  const out = await run(qemu, ['--version'], options)
  return /version ([\d.]+)/.exec(out)?.[1] ?? 'unknown'
}

/** Machine types this QEMU emulates: a migration target must offer the source's pinned type. */
export async function qemuMachineTypes (qemu: string, options: AbortOptions = {}): Promise<string[]> {
  const out = await run(qemu, ['-machine', 'help'], options)
  return out.split('\n').slice(1).map((l) => l.trim().split(/\s+/)[0] ?? '').filter((m) => m !== '' && m !== 'none')
}

export async function hostFingerprint (qemu: string, accel: Accelerator, options: AbortOptions = {}): Promise<HostFingerprint> {
  const [version, machineTypes] = await Promise.all([qemuVersion(qemu, options), qemuMachineTypes(qemu, options)])
  const cpu = hostCpu()
  return {
    driver: 'qemu',
    accel,
    qemuVersion: version,
    machineTypes,
    cpus: cpus().length,
    memoryMiB: Math.floor(totalmem() / 1024 / 1024),
    cpuModel: cpu.model || (cpus()[0]?.model ?? 'unknown'),
    cpuFlags: [...cpu.flags]
  }
}

async function run (qemu: string, args: string[], options: AbortOptions): Promise<string> {
  const result = await (await loadExeca())(qemu, args, { reject: false, cancelSignal: options.signal, stdin: 'ignore', timeout: 10_000 })
  if (result.code === 'ENOENT') throw new QemuMissingError(`${qemu} not found: install qemu-system-x86 (scripts/install-system-deps)`)
  if (result.failed) throw new QemuMissingError(`${qemu} ${args.join(' ')} failed: ${String(result.stderr).trim() || result.shortMessage}`)
  return String(result.stdout)
}
