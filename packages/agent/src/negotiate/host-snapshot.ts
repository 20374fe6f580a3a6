import type { HostEntry } from '@meshvirt/mesh'
import type { HostCapacity, HostSnapshot } from '@meshvirt/placement'

/**
 * A host of the cluster view as placement sees it. `fresher` holds capacities a host sent back
 * in a Refused: newer than its last advert, so they win until the next advert arrives.
 */
export function toHostSnapshot (entry: HostEntry, fresher?: HostCapacity): HostSnapshot {
  const a = entry.advert
  const vmGroups: Record<string, number> = {}
  for (const vm of a.vms) if (vm.group !== '' && vm.role === 'owner') vmGroups[vm.group] = (vmGroups[vm.group] ?? 0) + 1
  return {
    id: entry.hostId,
    hostname: a.hostname,
    state: entry.liveness,
    adminState: a.state === 'unspecified' ? 'active' : a.state,
    labels: a.labels,
    capacity: fresher ?? a.capacity,
    accelerator: a.accelerator === 'kvm' ? 'kvm' : 'tcg',
    cpuModel: a.cpuModel,
    cpuFlags: new Set(a.cpuFlags),
    load: { load1: a.load.load1, cpuUtilization: a.load.cpuUtilization },
    vmGroups,
    images: new Set(a.images.filter((i) => i.have.length === 0).map((i) => i.digest))
  }
}
