import type { ResizePlan } from '../resize.js'
import type { VmPaths, VmSpec } from '../types.js'
import { foldMemory, grownOnline } from '../memory-layout.js'
import { growDisk } from './disks.js'
import type { QmpClient } from './qmp-client.js'

const MIB = 2 ** 20

/**
 * Grows a running guest's memory to `next.memoryMiB` with one more DIMM (QMP object-add, then
 * device_add: the guest's ACPI sees a memory device arrive and onlines its blocks when its kernel
 * is told to, `memhp_default_state=online` or a udev rule). vCPUs do not change online here.
 * Returns the spec with the DIMM recorded; a refusal says why and changes nothing.
 */
export async function plugMemory (qmp: QmpClient, current: VmSpec, next: VmSpec, signal?: AbortSignal): Promise<VmSpec> {
  const grown = grownOnline(current, next)
  const growth = next.memoryMiB - current.memoryMiB
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
    return foldMemory(plan.spec)
  }
  const spec = plan.machineChanges ? await plugMemory(qmp, current, plan.spec, signal) : plan.spec
  for (const d of plan.grownDisks) await qmp.execute('block_resize', { 'node-name': `disk-${d.name}`, size: d.toMiB * MIB }, { signal })
  return spec
}
