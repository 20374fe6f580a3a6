import { DIMM_STEP_MIB, MEMORY_SLOTS } from './constants.js'
import { bootVcpus, cpuHotplugRefusal, foldCpus } from './cpu-layout.js'
import { WrongStateError } from './errors.js'
import type { VmSpec } from './types.js'

/**
 * A guest's memory layout, pure: boot RAM plus the DIMMs added while it ran (VmSpec.memoryDimmsMiB),
 * within the room it was launched with (VmSpec.maxMemoryMiB; none: it does not grow online).
 */

/** The RAM a guest boots with: its memory less what was added while it ran. */
export function bootMemoryMiB (spec: Pick<VmSpec, 'memoryMiB' | 'memoryDimmsMiB'>): number {
  return spec.memoryMiB - (spec.memoryDimmsMiB ?? []).reduce((a, b) => a + b, 0)
}

/** The most RAM the guest can have while it runs: its room to grow, else what it has. */
export function maxMemoryMiB (spec: Pick<VmSpec, 'memoryMiB' | 'maxMemoryMiB'>): number {
  return Math.max(spec.maxMemoryMiB ?? 0, spec.memoryMiB)
}

/**
 * Why the running guest cannot grow to `toMiB` with one more DIMM (undefined: it can): the growth
 * is whole 128 MiB blocks, a slot is free, and it stays within the room it was launched with.
 */
export function hotplugRefusal (spec: Pick<VmSpec, 'memoryMiB' | 'memoryDimmsMiB' | 'maxMemoryMiB'>, toMiB: number): string | undefined {
  const growth = toMiB - spec.memoryMiB
  if (growth <= 0) return 'a running guest\'s memory only grows'
  if (spec.maxMemoryMiB === undefined) return 'it has no room to grow online (vm create --max-memory, or vm resize --max-memory while it is stopped)'
  if (growth % DIMM_STEP_MIB !== 0) return `memory grows online in steps of ${DIMM_STEP_MIB} MiB (the guest kernel's memory block), not ${growth} MiB`
  if ((spec.memoryDimmsMiB ?? []).length >= MEMORY_SLOTS) return `all ${MEMORY_SLOTS} memory slots are used`
  if (toMiB > maxMemoryMiB(spec)) return `it has room for ${maxMemoryMiB(spec)} MiB (its --max-memory)`
  return undefined
}

/** The spec as a fresh boot launches it: memory and vCPUs added while it ran are boot memory and vCPUs now. */
export function foldOnlineGrowth (spec: VmSpec): VmSpec {
  const cpus = foldCpus(spec)
  if (cpus.memoryDimmsMiB === undefined) return cpus
  const { memoryDimmsMiB: _folded, ...rest } = cpus
  return rest
}

/**
 * The running guest's spec after growing to `next` online: one more DIMM recorded for more memory,
 * its boot vCPUs recorded for more vCPUs (both drivers decide with it; QEMU then plugs them). The
 * rooms change only while it is stopped; a refusal says why.
 */
export function grownOnline (current: VmSpec, next: VmSpec): VmSpec {
  if (next.maxMemoryMiB !== current.maxMemoryMiB) throw new WrongStateError(`VM ${current.id} is running: its room to grow (max memory) changes only while it is stopped`)
  if (next.maxVcpus !== current.maxVcpus) throw new WrongStateError(`VM ${current.id} is running: its room for vCPUs (max vCPUs) changes only while it is stopped`)
  let grown: VmSpec = next
  if (next.vcpus !== current.vcpus) {
    const why = cpuHotplugRefusal(current, next.vcpus)
    if (why !== undefined) throw new WrongStateError(`VM ${current.id} is running and cannot have ${next.vcpus} vCPUs online: ${why}`)
    grown = { ...grown, bootVcpus: bootVcpus(current) }
  }
  if (next.memoryMiB !== current.memoryMiB) {
    const why = hotplugRefusal(current, next.memoryMiB)
    if (why !== undefined) throw new WrongStateError(`VM ${current.id} is running and cannot have ${next.memoryMiB} MiB online: ${why}`)
    grown = { ...grown, memoryDimmsMiB: [...current.memoryDimmsMiB ?? [], next.memoryMiB - current.memoryMiB] }
  }
  return grown
}
