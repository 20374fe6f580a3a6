import type { HostAdminState, HostLiveness } from './host-snapshot.js'

/**
 * Stable codes carried in `PlacementExplanation.Rejection.filter` on the wire. Append only:
 * operators grep for them and dashboards group by them.
 */
export type FilterCode =
  | 'HOST_STATE'
  | 'CAPACITY_CPU'
  | 'CAPACITY_MEMORY'
  | 'CAPACITY_DISK'
  | 'ACCELERATOR'
  | 'LABELS'
  | 'AFFINITY'
  | 'ANTI_AFFINITY'
  | 'CPU_MODEL'
  | 'EXCLUDED'
  | 'FAILURE_DOMAIN'

/** Why one host cannot take the VM. */
export interface Rejection {
  hostId: string
  filter: FilterCode
  /** For this host, in words: "has 2048 MiB memory free, needs 4096 MiB". */
  reason: string
  /** Capacity filters: what the VM needs and what this host had free, in the dimension's unit. */
  need?: number
  free?: number
  /** HOST_STATE: the state that disqualified the host. */
  state?: HostLiveness | HostAdminState
  /**
   * What the rule was about, so a summary can group hosts by it: the label constraint (`zone=a`),
   * the VM group, the CPU model, the pinned host, the failure-domain key.
   */
  detail?: string
}
