import { CPU_MODELS, missingCpuFlags, type CpuModel } from './cpu-models.js'

/**
 * The most capable named QEMU model every one of these hosts can offer, for a VM that must be able
 * to migrate among them (`-cpu host` is KVM-only and pins a guest to identical hardware).
 * Undefined for an empty group. qemu64 needs only baseline x86-64, so any 64-bit host qualifies.
 */
export function cpuBaseline (hostFlagSets: ReadonlyArray<ReadonlySet<string> | readonly string[]>): CpuModel | undefined {
  if (hostFlagSets.length === 0) return undefined
  const sets = hostFlagSets.map((flags) => flags instanceof Set ? flags : new Set(flags as readonly string[]))
  let best: CpuModel | undefined
  for (const model of CPU_MODELS) {
    if (best !== undefined && model.generation <= best.generation) continue
    if (sets.every((flags) => missingCpuFlags(model, flags).length === 0)) best = model
  }
  return best
}
