import { hostAdvertFromWire } from '@meshvirt/mesh'
import { allocatableCapacity } from '@meshvirt/placement'
import type { meshvirt } from '@meshvirt/proto'
import type { Resources } from '../resources.js'
import { compareText } from '../util/compare-text.js'

/** One host as `meshvirt host ls` shows it: plain data decoded from the control API's HostList. */
export interface HostRow {
  hostId: string
  self: boolean
  hostname: string
  liveness: string
  state: string
  incarnation: number
  seq: number
  addrs: string[]
  labels: Record<string, string>
  total: Resources
  /** (total − host reserved) × overcommit ratio: what VMs may be given in all. */
  allocatable: Resources
  allocated: Resources
  reservations: Resources
  overcommit: { cpu: number, memory: number, disk: number }
  accelerator: string
  cpuModel: string
  qemuVersion: string
  vms: number
  lastHeardMs: number
}

/** Decodes the control API's HostList with mesh's advert codec (invalid adverts are left out). */
export function hostRows (list: meshvirt.v1.IHostList): HostRow[] {
  const rows: HostRow[] = []
  for (const h of list.hosts ?? []) {
    const decoded = hostAdvertFromWire(h.advert ?? {})
    if (!decoded.ok) continue
    const a = decoded.advert
    rows.push({
      hostId: a.hostId,
      self: a.hostId === list.selfId,
      hostname: a.hostname,
      liveness: h.liveness ?? 'unknown',
      state: a.state === 'unspecified' ? 'unknown' : a.state,
      incarnation: a.incarnation,
      seq: a.seq,
      addrs: a.addrs,
      labels: a.labels,
      total: a.capacity.total,
      allocatable: allocatableCapacity(a.capacity),
      allocated: a.capacity.allocated,
      reservations: a.capacity.reservations,
      overcommit: a.capacity.overcommit,
      accelerator: a.accelerator === 'unspecified' ? 'none' : a.accelerator,
      cpuModel: a.cpuModel,
      qemuVersion: a.qemuVersion,
      vms: a.vms.filter((v) => v.role === 'owner').length,
      lastHeardMs: Number(h.lastHeardMs ?? 0)
    })
  }
  return rows.sort((x, y) => compareText(x.hostname, y.hostname) || compareText(x.hostId, y.hostId))
}
