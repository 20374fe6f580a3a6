import { formatDisk, formatMemory, formatVcpus } from '../format-units.js'
import type { HostFilter } from '../host-filter.js'

/**
 * Free capacity after overcommit ratios and unexpired reservations (see `freeCapacity`). Memory is
 * tested first because it is the dimension that binds in practice (cpu is overcommitted 4×).
 * Written as !(need <= free) so that a malformed advert (NaN) fails the test instead of passing it.
 */
export const capacityFilter: HostFilter = (request) => {
  const need = request.resources
  return (host, free) => {
    if (!(need.memoryBytes <= free.memoryBytes)) {
      return {
        hostId: host.id,
        filter: 'CAPACITY_MEMORY',
        reason: `has ${formatMemory(Math.max(0, free.memoryBytes))} memory free, needs ${formatMemory(need.memoryBytes)}`,
        need: need.memoryBytes,
        free: free.memoryBytes
      }
    }
    if (!(need.vcpus <= free.vcpus)) {
      return {
        hostId: host.id,
        filter: 'CAPACITY_CPU',
        reason: `has ${formatVcpus(Math.max(0, free.vcpus))} free, needs ${need.vcpus}`,
        need: need.vcpus,
        free: free.vcpus
      }
    }
    if (!(need.diskBytes <= free.diskBytes)) {
      return {
        hostId: host.id,
        filter: 'CAPACITY_DISK',
        reason: `has ${formatDisk(Math.max(0, free.diskBytes))} disk free, needs ${formatDisk(need.diskBytes)}`,
        need: need.diskBytes,
        free: free.diskBytes
      }
    }
    return undefined
  }
}
