import type { HostSnapshot } from './host-snapshot.js'
import type { PlacementRequest } from './placement-request.js'
import { addResources } from './resources.js'

/**
 * The host as the view would show it once this VM lands: its resources allocated and its group
 * counted. Lets a batch of placements (and simulations) see each other's effect before the next
 * adverts arrive. The input is not modified.
 */
export function assumePlaced (host: HostSnapshot, request: PlacementRequest): HostSnapshot {
  const vmGroups = request.group === undefined || request.group === ''
    ? host.vmGroups
    : { ...host.vmGroups, [request.group]: (Object.hasOwn(host.vmGroups, request.group) ? host.vmGroups[request.group] ?? 0 : 0) + 1 }
  return {
    ...host,
    capacity: { ...host.capacity, allocated: addResources(host.capacity.allocated, request.resources) },
    vmGroups
  }
}
