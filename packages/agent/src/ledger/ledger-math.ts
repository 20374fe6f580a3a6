import { freeCapacity, type HostCapacity, type Resources } from '@meshvirt/placement'

export type ShortOf = 'cpu' | 'memory' | 'disk'

export type ReserveDecision =
  | { ok: true }
  | { ok: false, shortOf: ShortOf, message: string }

/**
 * The ledger's one rule, pure: a reservation is granted only if it fits in
 * (total − hostReserved) × ratio − allocated − reservations on every dimension — the same
 * arithmetic brokers rank with (placement's freeCapacity), so both sides agree on what fits.
 */
export function decideReserve (capacity: HostCapacity, want: Resources): ReserveDecision {
  if (!(want.vcpus >= 0 && want.memoryBytes >= 0 && want.diskBytes >= 0)) return { ok: false, shortOf: 'cpu', message: 'negative resources requested' }
  const free = freeCapacity(capacity)
  if (want.vcpus > free.vcpus) return { ok: false, shortOf: 'cpu', message: `needs ${want.vcpus} vCPUs, ${Math.max(0, free.vcpus)} free` }
  if (want.memoryBytes > free.memoryBytes) return { ok: false, shortOf: 'memory', message: `needs ${mib(want.memoryBytes)} MiB memory, ${mib(Math.max(0, free.memoryBytes))} MiB free` }
  if (want.diskBytes > free.diskBytes) return { ok: false, shortOf: 'disk', message: `needs ${mib(want.diskBytes)} MiB disk, ${mib(Math.max(0, free.diskBytes))} MiB free` }
  return { ok: true }
}

/**
 * What the host holds back for itself, with its hypervisor's per-guest memory overhead folded
 * in: the operator's `hostReserved` plus `overheadBytes` for each of `guests` (VMs and pending
 * reservations that run a guest). Kept out of `allocated` (that stays what VMs asked for) and
 * inside what brokers already subtract, so brokers and the ledger agree without a wire change.
 */
export function withGuestOverhead (hostReserved: Resources, overheadBytes: number, guests: number): Resources {
  if (!(overheadBytes > 0) || !(guests > 0)) return hostReserved
  return { ...hostReserved, memoryBytes: hostReserved.memoryBytes + overheadBytes * guests }
}

/** An overcommit audit: which dimensions exceed what the host may hand out (empty = sound). */
export function auditLedger (capacity: HostCapacity): ShortOf[] {
  const free = freeCapacity(capacity)
  const over: ShortOf[] = []
  if (free.vcpus < 0) over.push('cpu')
  if (free.memoryBytes < 0) over.push('memory')
  if (free.diskBytes < 0) over.push('disk')
  return over
}

function mib (bytes: number): number {
  return Math.floor(bytes / 2 ** 20)
}
