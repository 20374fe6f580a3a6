import type { LabelConstraint, PlacementRequest } from '@meshvirt/placement'
import { pb, type meshvirt } from '@meshvirt/proto'
import { specResources } from '../vm/vm-spec.js'

const OPS: Record<number, LabelConstraint['op']> = {
  [pb.LabelConstraint.Op.OP_EQ]: 'eq',
  [pb.LabelConstraint.Op.OP_NE]: 'ne',
  [pb.LabelConstraint.Op.OP_EXISTS]: 'exists',
  [pb.LabelConstraint.Op.OP_NOT_EXISTS]: 'notExists'
}

/** The placement half of a VM spec, as the placement engine takes it. */
export function placementRequestFor (spec: meshvirt.v1.IVmSpec, seed: string): PlacementRequest {
  return {
    resources: specResources(spec),
    ...(spec.accelerator === pb.Accelerator.ACCELERATOR_KVM ? { accelerator: 'kvm' as const } : spec.accelerator === pb.Accelerator.ACCELERATOR_TCG ? { accelerator: 'tcg' as const } : {}),
    constraints: (spec.constraints ?? []).map((c) => ({ key: c.key ?? '', op: OPS[c.op ?? 1] ?? 'eq', ...(c.value ? { value: c.value } : {}) })),
    ...(spec.group ? { group: spec.group } : {}),
    affinity: spec.affinity ?? [],
    antiAffinity: spec.antiAffinity ?? [],
    softAffinity: spec.softAffinity ?? [],
    softAntiAffinity: spec.softAntiAffinity ?? [],
    policy: spec.policy === pb.PlacementPolicy.PLACEMENT_POLICY_SPREAD ? 'spread' : 'binpack',
    ...(spec.cpuModel ? { cpuModel: spec.cpuModel } : {}),
    ...(spec.host ? { host: spec.host } : {}),
    ...(spec.boot?.library?.digest ? { image: spec.boot.library.digest } : {}),
    // A plain VM's failure-domain key: its group spreads over it, and its (anti-)affinity is by
    // domain rather than by host (placement's affinity filters).
    ...(spec.spreadBy ? { spreadBy: spec.spreadBy, affinityDomain: spec.spreadBy } : {}),
    seed
  }
}
