import { findCpuModel } from '../cpu-models.js'
import type { HostFilter } from '../host-filter.js'

/**
 * A migration target must offer the guest's CPU model, or the guest would see its CPU change under
 * it. `host` (passthrough) is left to the caller: it is KVM-only and needs identical hardware,
 * which a flag set cannot prove. A model this table does not know is refused rather than guessed.
 */
export const cpuModelFilter: HostFilter = (request) => {
  const name = request.cpuModel
  if (name === undefined || name === '' || name === 'host') return undefined
  const model = findCpuModel(name)
  if (model === undefined) {
    return (host) => ({ hostId: host.id, filter: 'CPU_MODEL', reason: `CPU model ${name} is not one placement knows`, detail: name })
  }
  const flags = model.flags
  return (host) => {
    // TCG emulates qemu64 in full whatever the host's CPU is (the model TCG guests get by default).
    if (host.accelerator === 'tcg' && model.name === 'qemu64') return undefined
    if (flags.every((f) => host.cpuFlags.has(f))) return undefined
    const missing = flags.filter((f) => !host.cpuFlags.has(f))
    const lacks = missing.slice(0, 4).join(', ') + (missing.length > 4 ? ', …' : '')
    return { hostId: host.id, filter: 'CPU_MODEL', reason: `cannot offer CPU model ${model.name} (lacks ${lacks})`, detail: model.name }
  }
}
