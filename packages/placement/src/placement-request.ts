import type { Accelerator } from './host-snapshot.js'
import type { Resources } from './resources.js'

/** `LabelConstraint` of proto/vm.proto: `zone=a` (eq), `zone!=b` (ne), exists, notExists. */
export interface LabelConstraint {
  key: string
  op: 'eq' | 'ne' | 'exists' | 'notExists'
  value?: string
}

/** binpack fills the fullest host that fits; spread prefers the emptiest (`PlacementPolicy`). */
export type PlacementPolicy = 'binpack' | 'spread'

/**
 * Where may this VM go? Mirrors the placement half of `VmSpec` (proto/vm.proto) plus what a
 * broker adds: exclusions (hosts that already refused, the migration source) and a seed.
 */
export interface PlacementRequest {
  resources: Resources
  /** Fixed by the VM's spec: only hosts of this accelerator. Unset: any. */
  accelerator?: Accelerator
  /** A live migration: the accelerator the guest runs under now; only hosts of the same (no guest moves across accelerators). */
  liveOn?: Accelerator
  constraints?: readonly LabelConstraint[]
  /** The VM's own group, counted by affinity rules of other VMs. */
  group?: string
  /** Hard: the host must already run a VM of every one of these groups. */
  affinity?: readonly string[]
  /** Hard: the host must run no VM of any of these groups. */
  antiAffinity?: readonly string[]
  /** Soft versions: scored, never filtered. */
  softAffinity?: readonly string[]
  softAntiAffinity?: readonly string[]
  policy?: PlacementPolicy
  /** QEMU CPU model the guest runs with; a host must be able to offer it (migration targets). */
  cpuModel?: string
  /** Pin to this host (peer id or hostname); the host must still pass every filter. */
  host?: string
  /** Host ids never to choose. */
  exclude?: readonly string[]
  /**
   * How many hosts `placeReplicaSet` chooses, each in its own failure domain (default 1). For the
   * holders of a running VM's replicas, also exclude the owner and constrain away its domain
   * (`{ key: spreadBy, op: 'ne', value: ownerDomain }`).
   */
  replicas?: number
  /** Failure-domain label key for replica sets (zone, rack, site); unset: distinct hosts. */
  spreadBy?: string
  /**
   * Label key (zone, rack, site) over which hard `affinity`/`antiAffinity` hold: a host's domain
   * (every host in the view with its label value) must (not) run the group. Unset: by host. A host
   * without the label is rejected (FAILURE_DOMAIN) when the request has such rules.
   */
  affinityDomain?: string
  /** The digest of the VM's library image, if any: hosts that hold it are preferred (never required). */
  image?: string
  /** Every tie and every sample is drawn from this seed (the idempotency key is a good one). */
  seed: string | number
}
