import type { Resources } from '@meshvirt/placement'
import type { VmResize } from '@meshvirt/hypervisor'
import { ControlError, toControlError } from '../control/errors.js'
import type { VmRow } from '../store/state-store.js'
import type { VmSpec } from './vm-spec-codec.js'

const MIB = 2 ** 20
const GIB = 2 ** 30

/** What `vm resize` asks: a new vCPU count, memory, disk size and room to grow online; 0 keeps the current value. */
export interface SizeRequest {
  vcpus: number
  memoryBytes: number
  diskBytes: number
  maxMemoryBytes?: number
  maxVcpus?: number
}

export type ResizeDecision =
  | { do: 'nothing' }
  | {
    do: 'resize'
    next: Resources
    spec: VmSpec
    /** What the driver is asked (its disk is `vda`, as driverSpec names it). */
    driver: VmResize
    /** The guest is stopped, resized and started again (`--restart` with vCPUs or memory of a running VM). */
    restart: boolean
  }

/**
 * What a resize of a VM on its owner does, pure: the new size, whether it can be done with the
 * guest as it is (a stopped VM: any size; a running one: its disk, memory and vCPUs grow online) or needs
 * a restart, which the operator must have asked for (`--restart` also makes an online growth one).
 * Disks only grow (a file system does not shrink with its disk).
 */
export function decideResize (vm: Pick<VmRow, 'name' | 'state' | 'resources'>, spec: VmSpec, req: SizeRequest, restartAllowed: boolean): ResizeDecision {
  const cur = vm.resources
  const next = nextSize(cur, req)
  if (req.diskBytes > 0 && cur.diskBytes === 0) {
    throw new ControlError('INVALID_ARGUMENT', `VM ${vm.name} has no disk to grow (it boots a kernel without one)`, { field: 'disk' })
  }
  if (next.diskBytes < cur.diskBytes) {
    throw new ControlError('INVALID_ARGUMENT', `a disk only grows: VM ${vm.name} has ${size(cur.diskBytes)}, asked ${size(next.diskBytes)}`, { field: 'disk' })
  }
  // Room to grow online: asked, else kept (and then at least the memory, which may outgrow it).
  const curRoom = spec.maxMemoryBytes
  const room = (req.maxMemoryBytes ?? 0) > 0 ? req.maxMemoryBytes as number : curRoom
  if (room > 0 && room < next.memoryBytes) {
    throw new ControlError('INVALID_ARGUMENT', `VM ${vm.name} may grow to ${size(room)} (its --max-memory): ${size(next.memoryBytes)} needs --max-memory too`, { field: 'max-memory' })
  }
  const curCpuRoom = spec.maxVcpus
  const cpuRoom = (req.maxVcpus ?? 0) > 0 ? req.maxVcpus as number : curCpuRoom
  if (cpuRoom > 0 && cpuRoom < next.vcpus) {
    throw new ControlError('INVALID_ARGUMENT', `VM ${vm.name} has room for ${cpuRoom} vCPUs (its --max-vcpus): ${next.vcpus} needs --max-vcpus too`, { field: 'max-vcpus' })
  }
  const machineChanges = next.vcpus !== cur.vcpus || next.memoryBytes !== cur.memoryBytes || room !== curRoom || cpuRoom !== curCpuRoom
  if (!machineChanges && next.diskBytes === cur.diskBytes) return { do: 'nothing' }
  const running = vm.state === 'running'
  // Online: memory and vCPUs grow by hotplug, within their rooms (the driver may still refuse, and
  // says why); the rooms, fewer vCPUs and less memory change only across a restart.
  const online = next.vcpus >= cur.vcpus && next.memoryBytes >= cur.memoryBytes && room === curRoom && cpuRoom === curCpuRoom &&
    (next.vcpus === cur.vcpus || curCpuRoom > 0)
  if (running && machineChanges && !online && !restartAllowed) {
    const what = next.vcpus < cur.vcpus ? 'its vCPUs shrink' : next.vcpus > cur.vcpus && curCpuRoom === 0 ? 'its vCPUs grow (online only within --max-vcpus, set while it is stopped)' : room !== curRoom ? 'its room to grow (--max-memory) changes' : cpuRoom !== curCpuRoom ? 'its room for vCPUs (--max-vcpus) changes' : 'its memory shrinks'
    throw new ControlError('WRONG_STATE', `VM ${vm.name} is running: ${what} only across a restart; add --restart (it is stopped, resized and started again) or stop it first`)
  }
  const driver: VmResize = {
    ...(next.vcpus !== cur.vcpus ? { vcpus: next.vcpus } : {}),
    ...(next.memoryBytes !== cur.memoryBytes ? { memoryMiB: next.memoryBytes / MIB } : {}),
    ...(room !== curRoom ? { maxMemoryMiB: room / MIB } : {}),
    ...(cpuRoom !== curCpuRoom ? { maxVcpus: cpuRoom } : {}),
    ...(next.diskBytes !== cur.diskBytes ? { disks: { vda: next.diskBytes / MIB } } : {})
  }
  return {
    do: 'resize',
    next,
    spec: { ...spec, maxMemoryBytes: room, maxVcpus: cpuRoom, resources: { ...spec.resources, vcpus: next.vcpus, memoryBytes: next.memoryBytes, diskBytes: next.diskBytes } },
    driver,
    restart: running && machineChanges && restartAllowed
  }
}

/** The size a request asks for: each value given, else the current one. */
export function nextSize (cur: Resources, req: SizeRequest): Resources {
  return {
    vcpus: req.vcpus > 0 ? req.vcpus : cur.vcpus,
    memoryBytes: req.memoryBytes > 0 ? req.memoryBytes : cur.memoryBytes,
    diskBytes: req.diskBytes > 0 ? req.diskBytes : cur.diskBytes
  }
}

/** A size as an operator reads it: GiB when whole, else MiB. */
export function size (bytes: number): string {
  return bytes % GIB === 0 ? `${bytes / GIB} GiB` : `${Math.round(bytes / MIB)} MiB`
}

/**
 * A driver's refusal of a resize, as the operator reads it (the driver's code kept in details);
 * `online`: the memory of a running guest was to grow by hotplug, which a restart would do instead.
 */
export function driverRefusal (err: unknown, name: string, online: boolean): unknown {
  const e = toControlError(err, 'FAILED', `cannot resize VM ${name}`)
  if (e.code === 'WRONG_STATE' && online && e.details.driverCode !== undefined) return new ControlError(e.code, `${e.message}; add --restart to resize it across a restart`, e.details)
  return e
}
