import type { Resources } from '@meshvirt/placement'
import type { meshvirt } from '@meshvirt/proto'
import type { VmResize } from '@meshvirt/hypervisor'
import { ControlError } from '../control/errors.js'
import type { VmRow } from '../store/state-store.js'

const MIB = 2 ** 20
const GIB = 2 ** 30

/** What `vm resize` asks: a new vCPU count, memory and disk size; 0 keeps the current value. */
export interface SizeRequest {
  vcpus: number
  memoryBytes: number
  diskBytes: number
}

export type ResizeDecision =
  | { do: 'nothing' }
  | {
    do: 'resize'
    next: Resources
    spec: meshvirt.v1.IVmSpec
    /** What the driver is asked (its disk is `vda`, as driverSpec names it). */
    driver: VmResize
    /** The guest is stopped, resized and started again (vCPUs or memory of a running VM). */
    restart: boolean
  }

/**
 * What a resize of a VM on its owner does, pure: the new size, whether it can be done with the
 * guest as it is (a stopped VM: any size; a running one: its disk grows online) or needs a restart,
 * which the operator must have asked for. Disks only grow (a file system does not shrink with its disk).
 */
export function decideResize (vm: Pick<VmRow, 'name' | 'state' | 'resources'>, spec: meshvirt.v1.IVmSpec, req: SizeRequest, restartAllowed: boolean): ResizeDecision {
  const cur = vm.resources
  const next: Resources = {
    vcpus: req.vcpus > 0 ? req.vcpus : cur.vcpus,
    memoryBytes: req.memoryBytes > 0 ? req.memoryBytes : cur.memoryBytes,
    diskBytes: req.diskBytes > 0 ? req.diskBytes : cur.diskBytes
  }
  if (req.diskBytes > 0 && cur.diskBytes === 0) {
    throw new ControlError('INVALID_ARGUMENT', `VM ${vm.name} has no disk to grow (it boots a kernel without one)`, { field: 'disk' })
  }
  if (next.diskBytes < cur.diskBytes) {
    throw new ControlError('INVALID_ARGUMENT', `a disk only grows: VM ${vm.name} has ${size(cur.diskBytes)}, asked ${size(next.diskBytes)}`, { field: 'disk' })
  }
  const machineChanges = next.vcpus !== cur.vcpus || next.memoryBytes !== cur.memoryBytes
  if (!machineChanges && next.diskBytes === cur.diskBytes) return { do: 'nothing' }
  const running = vm.state === 'running'
  if (running && machineChanges && !restartAllowed) {
    throw new ControlError('WRONG_STATE', `VM ${vm.name} is running: its vCPUs and memory change only across a restart; add --restart (it is stopped, resized and started again) or stop it first`)
  }
  const driver: VmResize = {
    ...(next.vcpus !== cur.vcpus ? { vcpus: next.vcpus } : {}),
    ...(next.memoryBytes !== cur.memoryBytes ? { memoryMiB: next.memoryBytes / MIB } : {}),
    ...(next.diskBytes !== cur.diskBytes ? { disks: { vda: next.diskBytes / MIB } } : {})
  }
  return {
    do: 'resize',
    next,
    spec: { ...spec, resources: { ...spec.resources, vcpus: next.vcpus, memoryBytes: next.memoryBytes, diskBytes: next.diskBytes } },
    driver,
    restart: running && machineChanges
  }
}

/** A size as an operator reads it: GiB when whole, else MiB. */
export function size (bytes: number): string {
  return bytes % GIB === 0 ? `${bytes / GIB} GiB` : `${Math.round(bytes / MIB)} MiB`
}
