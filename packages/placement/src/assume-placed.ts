import type { HostSnapshot } from './host-snapshot.js'
import type { PlacementRequest } from './placement-request.js'
import { addResources, subtractResources } from './resources.js'
import { groupCount } from './vm-groups.js'

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

/**
 * The host as the view would show it once this VM has left it: its resources released and its
 * group no longer counted. A migration places its VM against the view *without* the VM itself,
 * or a domain-scoped anti-affinity rule would find the VM in its own way.
 */
export function assumeRemoved (host: HostSnapshot, request: PlacementRequest): HostSnapshot {
  const group = request.group ?? ''
  let vmGroups = host.vmGroups
  if (group !== '' && groupCount(host.vmGroups, group) > 0) {
    const left = groupCount(host.vmGroups, group) - 1
    const { [group]: _gone, ...rest } = host.vmGroups
    vmGroups = left > 0 ? { ...rest, [group]: left } : rest
  }
  const allocated = subtractResources(host.capacity.allocated, request.resources)
  return {
    ...host,
    capacity: { ...host.capacity, allocated: { vcpus: Math.max(0, allocated.vcpus), memoryBytes: Math.max(0, allocated.memoryBytes), diskBytes: Math.max(0, allocated.diskBytes) } },
    vmGroups
  }
}
