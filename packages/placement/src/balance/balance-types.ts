import type { HostSnapshot } from '../host-snapshot.js'
import type { PlacementRequest } from '../placement-request.js'

/** What a running guest costs its host, measured: CPU cores busy and resident memory. */
export interface VmUsage {
  cpuCores: number
  memoryBytes: number
}

/**
 * A VM as the balancer sees it. `request` is how placement would place it again (its spec's
 * resources, group and rules, `liveOn` its accelerator): every target must pass placement's filters
 * for it. `pinned` says why it never moves (`--no-balance`, not migratable, not running).
 */
export interface BalanceVm {
  id: string
  name?: string
  request: Omit<PlacementRequest, 'seed' | 'exclude' | 'host'>
  /** Measured use; unset (not measured yet): its allocation counts as its demand. */
  usage?: VmUsage
  pinned?: string
}

/** A host and the VMs it owns, from its advert (or the planner's simulation of it). */
export interface BalanceHost {
  snapshot: HostSnapshot
  vms: readonly BalanceVm[]
}

/** The knobs, in utilisation points (0.05 = 5 % of a host). */
export interface BalanceOptions {
  /** A host acts only when its utilisation is above the cluster mean by more than this. */
  threshold: number
  /**
   * A move must narrow the gap between its source and its target by at least this much — so the
   * reverse move can never pay, and a VM is never passed back.
   */
  margin: number
  /** Weight of CPU against memory in a host's utilisation (memory gets 1 − cpuWeight). */
  cpuWeight: number
}

/** One live migration the balancer proposes, with what it expects from it. */
export interface BalanceMove {
  vmId: string
  vmName: string
  from: string
  to: string
  /** Utilisation of source and target before and after the move. */
  fromBefore: number
  fromAfter: number
  toBefore: number
  toAfter: number
  /** Cluster mean utilisation (over the hosts that take part). */
  mean: number
  /** Coefficient of variation of utilisation before and after. */
  cvBefore: number
  cvAfter: number
  /** How much the move narrows the source–target gap (≥ margin). */
  gain: number
  /** In words, for the event and the dry run. */
  reason: string
}

/** Why a host makes no move right now (for logs and `cluster balance --dry-run`). */
export type NoMoveReason =
  | { code: 'NOT_ELIGIBLE', reason: string }
  | { code: 'WITHIN_THRESHOLD', reason: string }
  | { code: 'NO_GAIN', reason: string }

export type BestMoveResult = { move: BalanceMove } | { move?: undefined, why: NoMoveReason }
