import { GIB, type HostSnapshot, type PlacementRequest, type Resources } from '../src/index.js'

export const NONE: Resources = { vcpus: 0, memoryBytes: 0, diskBytes: 0 }

/** A 16-vCPU, 64 GiB, 1 TiB KVM host, alive and active, nothing allocated; override what a case needs. */
export function host (id: string, overrides: Partial<HostSnapshot> = {}): HostSnapshot {
  return {
    id,
    state: 'alive',
    adminState: 'active',
    labels: {},
    capacity: {
      total: { vcpus: 16, memoryBytes: 64 * GIB, diskBytes: 1024 * GIB },
      hostReserved: NONE,
      allocated: NONE,
      reservations: NONE,
      overcommit: { cpu: 1, memory: 1, disk: 1 }
    },
    accelerator: 'kvm',
    cpuFlags: new Set(),
    vmGroups: {},
    ...overrides
  }
}

/** `host` with `allocated` set. */
export function hostUsing (id: string, allocated: Resources, overrides: Partial<HostSnapshot> = {}): HostSnapshot {
  const h = host(id, overrides)
  return { ...h, capacity: { ...h.capacity, allocated } }
}

export function vm (overrides: Partial<PlacementRequest> = {}): PlacementRequest {
  return { resources: { vcpus: 2, memoryBytes: 4 * GIB, diskBytes: 20 * GIB }, seed: 'test', ...overrides }
}
