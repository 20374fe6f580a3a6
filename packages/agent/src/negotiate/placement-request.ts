import type { PlacementRequest } from '@meshvirt/placement'
import type { VmSpec } from '../vm/vm-spec-codec.js'

/** The placement half of a VM spec, as the placement engine takes it. */
export function placementRequestFor (spec: VmSpec, seed: string): PlacementRequest {
  return {
    resources: { ...spec.resources },
    ...(spec.accelerator !== null ? { accelerator: spec.accelerator } : {}),
    constraints: spec.constraints.map((c) => ({ ...c })),
    ...(spec.group !== '' ? { group: spec.group } : {}),
    affinity: [...spec.affinity],
    antiAffinity: [...spec.antiAffinity],
    softAffinity: [...spec.softAffinity],
    softAntiAffinity: [...spec.softAntiAffinity],
    policy: spec.policy ?? 'binpack',
    ...(spec.cpuModel !== '' ? { cpuModel: spec.cpuModel } : {}),
    ...(spec.host !== '' ? { host: spec.host } : {}),
    ...(spec.boot.library !== null && spec.boot.library.digest !== '' ? { image: spec.boot.library.digest } : {}),
    // A plain VM's failure-domain key: its group spreads over it, and its (anti-)affinity is by
    // domain rather than by host (placement's affinity filters).
    ...(spec.spreadBy !== '' ? { spreadBy: spec.spreadBy, affinityDomain: spec.spreadBy } : {}),
    seed
  }
}
