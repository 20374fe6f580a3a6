import { createHash } from 'node:crypto'
import { statfs } from 'node:fs/promises'
import { hostname } from 'node:os'
// Only the CPU and memory parts of systeminformation: its index loads all ~20 (network, docker,
// bluetooth, printers…), ~680 KB of source an agent would keep on its heap for its whole life.
import { cpu as siCpu, cpuFlags as siCpuFlags } from 'systeminformation/lib/cpu.js'
import { mem as siMem } from 'systeminformation/lib/memory.js'

export type Accelerator = 'kvm' | 'tcg' | 'none'

/** What the hypervisor says about itself (from its fingerprint and boot probe). */
export interface HypervisorFacts {
  accelerator: Accelerator
  qemuVersion: string
  machineTypes: string[]
}

/** The physical facts of this host, gathered once at start (and refreshed on demand). */
export interface HostInventory {
  hostname: string
  vcpus: number
  memoryBytes: number
  /** Space the data dir's filesystem can still give to VM disks. */
  diskBytes: number
  cpuModel: string
  cpuFlags: string[]
  /** Equal fingerprints ⇒ equal flag sets: a cheap first check for migration compatibility. */
  cpuFlagsFingerprint: string
  accelerator: Accelerator
  qemuVersion: string
  machineTypes: string[]
}

export const NO_HYPERVISOR: HypervisorFacts = { accelerator: 'none', qemuVersion: '', machineTypes: [] }

export async function collectInventory (dataDir: string, hv: HypervisorFacts = NO_HYPERVISOR): Promise<HostInventory> {
  const [cpu, flags, mem, fs] = await Promise.all([siCpu(), siCpuFlags(), siMem(), statfs(dataDir)])
  const cpuFlags = flags.split(/\s+/).filter((f) => f !== '').sort()
  return {
    hostname: hostname(),
    vcpus: cpu.cores,
    memoryBytes: mem.total,
    diskBytes: fs.bavail * fs.bsize,
    cpuModel: [cpu.manufacturer, cpu.brand].filter((s) => s !== '').join(' ').trim(),
    cpuFlags,
    cpuFlagsFingerprint: fingerprintFlags(cpuFlags),
    accelerator: hv.accelerator,
    qemuVersion: hv.qemuVersion,
    machineTypes: hv.machineTypes
  }
}

export function fingerprintFlags (flags: string[]): string {
  return createHash('sha256').update([...new Set(flags)].sort().join(' ')).digest('hex').slice(0, 16)
}
