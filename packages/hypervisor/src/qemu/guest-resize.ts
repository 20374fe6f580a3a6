import type { ResizePlan } from '../resize.js'
import type { VmPaths, VmSpec } from '../types.js'
import { cpuDeviceType, cpuSlot } from '../cpu-layout.js'
import { foldOnlineGrowth, grownOnline } from '../memory-layout.js'
import { growDisk } from './disks.js'
import type { QmpClient } from './qmp-client.js'

const MIB = 2 ** 20

/**
 * Grows a running guest online to `next` (grownOnline decides and records): the vCPUs added one
 * `device_add` each (the guest's ACPI sees a CPU arrive; it runs once the guest onlines it, as a
 * udev rule does, or `echo 1 > /sys/devices/system/cpu/cpuN/online`), then the memory as one more DIMM
 * (object-add, then device_add: the guest onlines its blocks when its kernel is told to,
 * `memhp_default_state=online` or a udev rule). Returns the spec with them recorded; a refusal says
 * why and changes nothing.
 */
export async function plugGrowth (qmp: QmpClient, current: VmSpec, next: VmSpec, signal?: AbortSignal): Promise<VmSpec> {
  const grown = grownOnline(current, next)
  for (let i = current.vcpus; i < next.vcpus; i++) {
    await qmp.execute('device_add', { driver: cpuDeviceType(current), id: `cpu${i}`, ...cpuSlot(i) }, { signal })
  }
  const growth = next.memoryMiB - current.memoryMiB
  if (growth <= 0) return grown
  const id = `dimm${(current.memoryDimmsMiB ?? []).length}`
  await qmp.execute('object-add', { 'qom-type': 'memory-backend-ram', id: `${id}-ram`, size: growth * MIB }, { signal })
  try {
    await qmp.execute('device_add', { driver: 'pc-dimm', id, memdev: `${id}-ram` }, { signal })
  } catch (err) {
    await qmp.execute('object-del', { id: `${id}-ram` }).catch(() => {})
    throw err
  }
  return grown
}

/**
 * What a resize does to the guest, by QEMU: running (`qmp` given), one more DIMM and its disks grown
 * with `block_resize` (the guest sees them at once); not running, its disks grown with qemu-img and
 * the memory added while it last ran folded into boot RAM. Returns the spec to record.
 */
export async function resizeGuest (vm: { qemuImg: string, paths: VmPaths, qmp: QmpClient | undefined }, current: VmSpec, plan: ResizePlan, signal?: AbortSignal): Promise<VmSpec> {
  const { qmp } = vm
  if (qmp === undefined) {
    for (const d of plan.grownDisks) await growDisk({ qemuImg: vm.qemuImg, path: vm.paths.disks[d.name] as string, sizeMiB: d.toMiB, signal })
    return foldOnlineGrowth(plan.spec)
  }
  const spec = plan.machineChanges ? await plugGrowth(qmp, current, plan.spec, signal) : plan.spec
  for (const d of plan.grownDisks) await qmp.execute('block_resize', { 'node-name': `disk-${d.name}`, size: d.toMiB * MIB }, { signal })
  return spec
}
