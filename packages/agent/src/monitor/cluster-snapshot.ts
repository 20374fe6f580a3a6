import type { HostEntry } from '@meshvirt/mesh'
import { compareText } from '../util/compare-text.js'

export interface SnapshotHost {
  hostId: string
  hostname: string
  liveness: string
  state: string
  self: boolean
  labels: Record<string, string>
  accelerator: string
  /** What VMs may be given in all: (total − host reserved) × overcommit. */
  allocatable: { vcpus: number, memoryBytes: number, diskBytes: number }
  allocated: { vcpus: number, memoryBytes: number, diskBytes: number }
  reserved: { vcpus: number, memoryBytes: number, diskBytes: number }
  vms: number
  lastHeardMs: number
}

export interface SnapshotVm {
  id: string
  name: string
  state: string
  owner: string
  ownerName: string
  epoch: number
  vcpus: number
  memoryBytes: number
  /** Hosts holding a replica of its disk (names), from their adverts. */
  replicas: string[]
  /** State unknown: its owner is dead or gone (removed from the view) since this instant. */
  ownerLiveness?: string
  unknownSinceMs?: number
}

export interface ClusterSnapshot {
  selfId: string
  timeMs: number
  hosts: SnapshotHost[]
  vms: SnapshotVm[]
}

/**
 * The cluster as this agent's view holds it, for the dashboard: plain JSON from the gossiped
 * adverts (hints, seconds fresh), so any agent shows every host and VM without asking anyone.
 */
export function clusterSnapshot (selfId: string, hosts: HostEntry[], now = Date.now(), unknown: readonly SnapshotVm[] = []): ClusterSnapshot {
  const byId = new Map<string, SnapshotVm>()
  const replicas = new Map<string, string[]>()
  const name = (h: HostEntry): string => h.advert.hostname !== '' ? h.advert.hostname : h.hostId.slice(-12)
  for (const h of hosts) {
    if (h.liveness === 'dead') continue
    for (const v of h.advert.vms) {
      if (v.role === 'replica') replicas.set(v.id, [...replicas.get(v.id) ?? [], name(h)])
      if (v.role !== 'owner') continue
      const prev = byId.get(v.id)
      // During a hand-over two hosts may both list the VM for a moment: the higher epoch owns it.
      if (prev !== undefined && prev.epoch >= v.epoch) continue
      byId.set(v.id, { id: v.id, name: v.name, state: v.state, owner: h.hostId, ownerName: name(h), epoch: v.epoch, vcpus: v.resources.vcpus, memoryBytes: v.resources.memoryBytes, replicas: [] })
    }
  }
  for (const [id, holders] of replicas) {
    const vm = byId.get(id)
    if (vm !== undefined) vm.replicas = holders.sort()
  }
  return {
    selfId,
    timeMs: now,
    hosts: hosts.map((h) => {
      const c = h.advert.capacity
      const alloc = (k: 'vcpus' | 'memoryBytes' | 'diskBytes', ratio: number): number => Math.floor((c.total[k] - c.hostReserved[k]) * ratio)
      return {
        hostId: h.hostId,
        hostname: name(h),
        liveness: h.liveness,
        state: h.advert.state,
        self: h.self,
        labels: h.advert.labels,
        accelerator: h.advert.accelerator,
        allocatable: { vcpus: alloc('vcpus', c.overcommit.cpu), memoryBytes: alloc('memoryBytes', c.overcommit.memory), diskBytes: alloc('diskBytes', c.overcommit.disk) },
        allocated: { ...c.allocated },
        reserved: { ...c.reservations },
        vms: h.advert.vms.filter((v) => v.role === 'owner').length,
        lastHeardMs: h.lastHeardMs
      }
    }).sort((a, b) => compareText(a.hostname, b.hostname)),
    vms: [...byId.values(), ...unknown.filter((u) => !byId.has(u.id))].sort((a, b) => compareText(a.name, b.name))
  }
}
