import { InvalidSpecError } from './errors.js'
import type { VmSpec } from './types.js'

/** A VM's new size; what is absent stays as it is. Disks by name, in MiB. */
export interface VmResize {
  vcpus?: number
  memoryMiB?: number
  /** Room to grow online (a machine change: only while stopped); 0 removes it. */
  maxMemoryMiB?: number
  /** Room for vCPUs online (only while stopped); 0 removes it. */
  maxVcpus?: number
  disks?: Record<string, number>
}

/** What a resize changes: the new spec, the disks that grow, whether the guest's CPUs or RAM change. */
export interface ResizePlan {
  spec: VmSpec
  grownDisks: Array<{ name: string, fromMiB: number, toMiB: number }>
  /** vCPUs or memory differ: the machine itself changes (QEMU is launched with them). */
  machineChanges: boolean
}

/**
 * The spec after a resize, pure. Disks only grow: a guest's file system does not shrink with its
 * disk, and cutting the image would lose its end. Unknown disk names are refused.
 */
export function planResize (spec: VmSpec, change: VmResize): ResizePlan {
  const disks = spec.disks ?? []
  const grownDisks: ResizePlan['grownDisks'] = []
  for (const [name, toMiB] of Object.entries(change.disks ?? {})) {
    const disk = disks.find((d) => d.name === name)
    if (disk === undefined) throw new InvalidSpecError(`VM ${spec.id} has no disk ${name}${disks.length === 0 ? ' (it has no disk at all)' : ` (it has ${disks.map((d) => d.name).join(', ')})`}`)
    if (!Number.isInteger(toMiB) || toMiB < disk.sizeMiB) throw new InvalidSpecError(`disk ${name} of VM ${spec.id} can only grow: it is ${disk.sizeMiB} MiB, asked ${toMiB} MiB`)
    if (toMiB > disk.sizeMiB) grownDisks.push({ name, fromMiB: disk.sizeMiB, toMiB })
  }
  const { maxMemoryMiB: room, maxVcpus: cpuRoom, ...rest } = spec
  const maxMemoryMiB = change.maxMemoryMiB === undefined ? room : change.maxMemoryMiB > 0 ? change.maxMemoryMiB : undefined
  const maxVcpus = change.maxVcpus === undefined ? cpuRoom : change.maxVcpus > 0 ? change.maxVcpus : undefined
  const next: VmSpec = {
    ...rest,
    vcpus: change.vcpus ?? spec.vcpus,
    memoryMiB: change.memoryMiB ?? spec.memoryMiB,
    ...(maxMemoryMiB !== undefined ? { maxMemoryMiB } : {}),
    ...(maxVcpus !== undefined ? { maxVcpus } : {}),
    ...(spec.disks !== undefined ? { disks: disks.map((d) => ({ ...d, sizeMiB: change.disks?.[d.name] ?? d.sizeMiB })) } : {})
  }
  const machineChanges = next.vcpus !== spec.vcpus || next.memoryMiB !== spec.memoryMiB || next.maxMemoryMiB !== spec.maxMemoryMiB || next.maxVcpus !== spec.maxVcpus
  return { spec: next, grownDisks, machineChanges }
}
