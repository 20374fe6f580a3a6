import type { Resources } from '../resources.js'

/**
 * Mean share of the host's allocatable capacity in use once `need` is placed, over the dimensions
 * the host has any of. Nomad's best-fit scores the same way; averaging keeps one nearly-full
 * dimension from hiding an empty one.
 */
export function utilisationAfter (need: Resources, free: Resources, allocatable: Resources): number {
  let sum = 0
  let dims = 0
  if (allocatable.vcpus > 0) { sum += (allocatable.vcpus - free.vcpus + need.vcpus) / allocatable.vcpus; dims++ }
  if (allocatable.memoryBytes > 0) { sum += (allocatable.memoryBytes - free.memoryBytes + need.memoryBytes) / allocatable.memoryBytes; dims++ }
  if (allocatable.diskBytes > 0) { sum += (allocatable.diskBytes - free.diskBytes + need.diskBytes) / allocatable.diskBytes; dims++ }
  if (dims === 0) return 1
  return Math.min(1, Math.max(0, sum / dims))
}
