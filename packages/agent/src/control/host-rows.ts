import type { meshvirt } from '@meshvirt/proto'
import type { Resources } from '../resources.js'

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

const STATE_NAMES: Record<number, string> = { 0: 'unknown', 1: 'active', 2: 'draining', 3: 'drained', 4: 'leaving' }
const ACCEL_NAMES: Record<number, string> = { 0: 'none', 1: 'kvm', 2: 'tcg' }

function res (r: meshvirt.v1.IResources | null | undefined): Resources {
  return { vcpus: r?.vcpus ?? 0, memoryBytes: Number(r?.memoryBytes ?? 0), diskBytes: Number(r?.diskBytes ?? 0) }
}

export function hostRows (list: meshvirt.v1.IHostList): HostRow[] {
  return (list.hosts ?? []).map((h) => {
    const a = h.advert ?? {}
    const cap = a.capacity ?? {}
    const total = res(cap.total)
    const reserved = res(cap.hostReserved)
    const oc = { cpu: cap.overcommit?.cpu ?? 1, memory: cap.overcommit?.memory ?? 1, disk: cap.overcommit?.disk ?? 1 }
    return {
      hostId: a.hostId ?? '',
      self: a.hostId === list.selfId,
      hostname: a.hostname ?? '',
      liveness: h.liveness ?? 'unknown',
      state: STATE_NAMES[a.state ?? 0] ?? 'unknown',
      incarnation: Number(a.incarnation ?? 0),
      seq: Number(a.seq ?? 0),
      addrs: a.addrs ?? [],
      labels: a.labels ?? {},
      total,
      allocatable: {
        vcpus: Math.floor((total.vcpus - reserved.vcpus) * oc.cpu),
        memoryBytes: Math.floor((total.memoryBytes - reserved.memoryBytes) * oc.memory),
        diskBytes: Math.floor((total.diskBytes - reserved.diskBytes) * oc.disk)
      },
      allocated: res(cap.allocated),
      reservations: res(cap.reservations),
      overcommit: oc,
      accelerator: ACCEL_NAMES[a.accelerator ?? 0] ?? 'none',
      cpuModel: a.cpuModel ?? '',
      qemuVersion: a.qemuVersion ?? '',
      vms: (a.vms ?? []).length,
      lastHeardMs: Number(h.lastHeardMs ?? 0)
    }
  }).sort((x, y) => x.hostname.localeCompare(y.hostname) || x.hostId.localeCompare(y.hostId))
}
