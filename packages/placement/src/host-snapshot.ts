import type { Resources } from './resources.js'

/** What the failure detector says about a host (mesh liveness, not the host's own word). */
export type HostLiveness = 'alive' | 'suspect' | 'dead'

/** What the host says about itself: `HostState` of proto/common.proto, lower-cased. */
export type HostAdminState = 'active' | 'draining' | 'drained' | 'leaving'

export type Accelerator = 'kvm' | 'tcg'

/** Overcommit ratios (Nova's defaults: cpu 4.0, memory 1.0, disk 1.0). */
export interface Overcommit {
  cpu: number
  memory: number
  disk: number
}

/** `HostCapacity` of proto/host.proto, field for field. */
export interface HostCapacity {
  total: Resources
  /** Held back by the operator for the host itself (its OS, the agent, QEMU overheads). */
  hostReserved: Resources
  /** Committed to VMs. */
  allocated: Resources
  /** Promised to brokers by unexpired reservations. */
  reservations: Resources
  overcommit: Overcommit
}

export interface HostLoad {
  load1: number
  /** 0..1 over all physical cores. */
  cpuUtilization: number
}

/**
 * One host as a broker's view holds it: a `HostAdvert` plus the liveness the mesh assigned.
 * A hint, never a promise — the host's own ledger decides at Reserve time.
 *
 * @example From a decoded, validated advert (field for field; enums lower-cased):
 * ```ts
 * const snapshot: HostSnapshot = {
 *   id: advert.hostId, hostname: advert.hostname, state: liveness,      // from the cluster view
 *   adminState: 'active',                                                // HOST_STATE_ACTIVE → 'active', DRAINING → 'draining', …
 *   labels: advert.labels, capacity: advert.capacity,                    // same shape once validated (absent → zeros)
 *   accelerator: advert.accelerator === pb.Accelerator.ACCELERATOR_KVM ? 'kvm' : 'tcg',
 *   cpuModel: advert.cpuModel, cpuFlags: new Set(advert.cpuFlags),       // build the set once per advert
 *   load: advert.load, vmGroups: countBy(advert.vms, (vm) => vm.group)
 * }
 * ```
 */
export interface HostSnapshot {
  /** libp2p peer id. */
  id: string
  hostname?: string
  state: HostLiveness
  adminState: HostAdminState
  /** Failure domains and operator labels: zone, rack, site, … */
  labels: Readonly<Record<string, string>>
  capacity: HostCapacity
  accelerator: Accelerator
  /** Host CPU model name as the host reports it (e.g. "AMD EPYC 9B14"). */
  cpuModel?: string
  /** CPU flags as Linux /proc/cpuinfo spells them; a set because filters test membership. */
  cpuFlags: ReadonlySet<string>
  load?: HostLoad
  /** VM group → number of this host's VMs in it (from the advert's VM summaries). */
  vmGroups: Readonly<Record<string, number>>
  /** Digests of the library images the host holds whole (image locality). */
  images?: ReadonlySet<string>
}
