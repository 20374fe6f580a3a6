import type { HostCapacity } from './host-snapshot.js'
import type { Resources } from './resources.js'

/**
 * What a host may hand out in one dimension: (total − hostReserved) × ratio, floored to a whole
 * unit. A ratio of exactly 1 skips the float multiply so byte counts up to 2^53 stay exact. A
 * ratio that is not a positive finite number (proto3 decodes an unset ratio as 0) counts as 1:
 * never overcommit on a missing setting.
 */
export function allocatableAmount (total: number, hostReserved: number, ratio: number): number {
  const base = Math.max(0, total - hostReserved)
  if (ratio === 1 || !(ratio > 0) || !Number.isFinite(ratio)) return base
  return Math.min(Math.floor(base * ratio), Number.MAX_SAFE_INTEGER)
}

/** (total − hostReserved) × ratio, per dimension. */
export function allocatableCapacity (capacity: HostCapacity): Resources {
  const { total, hostReserved, overcommit } = capacity
  return {
    vcpus: allocatableAmount(total.vcpus, hostReserved.vcpus, overcommit.cpu),
    memoryBytes: allocatableAmount(total.memoryBytes, hostReserved.memoryBytes, overcommit.memory),
    diskBytes: allocatableAmount(total.diskBytes, hostReserved.diskBytes, overcommit.disk)
  }
}

/**
 * free = (total − hostReserved) × ratio − allocated − reservations (docs/design.md, "Place").
 * The same arithmetic the host's ledger uses at Reserve time, so a broker and the host agree on
 * what fits. Negative when a host is over-committed (e.g. after an operator lowered a ratio).
 */
export function freeCapacity (capacity: HostCapacity): Resources {
  return freeWithin(allocatableCapacity(capacity), capacity)
}

/** `freeCapacity` when the allocatable capacity is already at hand (the ranker needs both). */
export function freeWithin (limit: Resources, capacity: HostCapacity): Resources {
  const { allocated, reservations } = capacity
  return {
    vcpus: limit.vcpus - allocated.vcpus - reservations.vcpus,
    memoryBytes: limit.memoryBytes - allocated.memoryBytes - reservations.memoryBytes,
    diskBytes: limit.diskBytes - allocated.diskBytes - reservations.diskBytes
  }
}
