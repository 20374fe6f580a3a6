import { WrongStateError } from '../errors.js'
import type { VmSpec } from '../types.js'
import { hotplugRefusal } from '../memory-layout.js'
import type { QmpClient } from './qmp-client.js'

const MIB = 2 ** 20

/**
 * Grows a running guest's memory to `next.memoryMiB` with one more DIMM (QMP object-add, then
 * device_add: the guest's ACPI sees a memory device arrive and onlines its blocks when its kernel
 * is told to, `memhp_default_state=online` or a udev rule). vCPUs do not change online here.
 * Returns the spec with the DIMM recorded; a refusal says why and changes nothing.
 */
export async function plugMemory (qmp: QmpClient, current: VmSpec, next: VmSpec, signal?: AbortSignal): Promise<VmSpec> {
  if (next.vcpus !== current.vcpus) throw new WrongStateError(`VM ${current.id} is running: its vCPUs change only while it is stopped`)
  if (next.maxMemoryMiB !== current.maxMemoryMiB) throw new WrongStateError(`VM ${current.id} is running: its room to grow (max memory) changes only while it is stopped`)
  const why = hotplugRefusal(current, next.memoryMiB)
  if (why !== undefined) throw new WrongStateError(`VM ${current.id} is running and cannot have ${next.memoryMiB} MiB online: ${why}`)
  const dimms = current.memoryDimmsMiB ?? []
  const growth = next.memoryMiB - current.memoryMiB
  const id = `dimm${dimms.length}`
  await qmp.execute('object-add', { 'qom-type': 'memory-backend-ram', id: `${id}-ram`, size: growth * MIB }, { signal })
  try {
    await qmp.execute('device_add', { driver: 'pc-dimm', id, memdev: `${id}-ram` }, { signal })
  } catch (err) {
    await qmp.execute('object-del', { id: `${id}-ram` }).catch(() => {})
    throw err
  }
  return { ...next, memoryDimmsMiB: [...dimms, growth] }
}
