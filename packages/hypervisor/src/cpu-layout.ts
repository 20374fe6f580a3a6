import { DEFAULT_CPU_MODEL, MAX_HOTPLUG_VCPUS } from './constants.js'
import type { VmSpec } from './types.js'

/**
 * A guest's vCPU layout, pure: the vCPUs it booted with plus those added while it ran, within the
 * room it was launched with (VmSpec.maxVcpus; none: its vCPUs change only across a restart). With
 * room, QEMU gets one socket per possible vCPU (`-smp boot,sockets=max,cores=1,threads=1,maxcpus=max`),
 * so vCPU `i` is socket `i` and is added with `device_add <model>-x86_64-cpu,socket-id=i,…`.
 */

/** The vCPUs a guest boots with: its vCPUs less those added while it ran. */
export function bootVcpus (spec: Pick<VmSpec, 'vcpus' | 'bootVcpus'>): number {
  return spec.bootVcpus ?? spec.vcpus
}

/** The QOM type of one more vCPU of the guest's model (`qemu64` → `qemu64-x86_64-cpu`). */
export function cpuDeviceType (spec: Pick<VmSpec, 'cpuModel'>): string {
  return `${(spec.cpuModel ?? DEFAULT_CPU_MODEL).split(',')[0] ?? DEFAULT_CPU_MODEL}-x86_64-cpu`
}

/** The properties of vCPU `index` (0-based) in a guest launched with room. */
export function cpuSlot (index: number): { 'socket-id': number, 'core-id': number, 'thread-id': number } {
  return { 'socket-id': index, 'core-id': 0, 'thread-id': 0 }
}

/**
 * QEMU's vCPU options: `-smp N` for a guest without room (as before: its machine is unchanged);
 * with room, the sockets for all of it, and one `-device` per vCPU added while it ran (ids `cpu<i>`:
 * a migration's two sides build the same machine).
 */
export function cpuArgv (spec: Pick<VmSpec, 'vcpus' | 'bootVcpus' | 'maxVcpus' | 'cpuModel'>): string[] {
  if (spec.maxVcpus === undefined) return ['-smp', String(spec.vcpus)]
  const max = Math.max(spec.maxVcpus, spec.vcpus)
  const argv = ['-smp', `${bootVcpus(spec)},sockets=${max},cores=1,threads=1,maxcpus=${max}`]
  for (let i = bootVcpus(spec); i < spec.vcpus; i++) {
    const s = cpuSlot(i)
    argv.push('-device', `${cpuDeviceType(spec)},id=cpu${i},socket-id=${s['socket-id']},core-id=${s['core-id']},thread-id=${s['thread-id']}`)
  }
  return argv
}

/** Why the running guest cannot have `to` vCPUs online (undefined: it can). */
export function cpuHotplugRefusal (spec: Pick<VmSpec, 'vcpus' | 'maxVcpus'>, to: number): string | undefined {
  if (to < spec.vcpus) return 'a running guest\'s vCPUs only grow (fewer: --restart)'
  if (spec.maxVcpus === undefined) return 'it has no room for vCPUs online (vm create --max-vcpus, or vm resize --max-vcpus while it is stopped)'
  if (to > spec.maxVcpus) return `it has room for ${spec.maxVcpus} vCPUs (its --max-vcpus)`
  return undefined
}

/** Checks a room: whole, at least the vCPUs, at most MAX_HOTPLUG_VCPUS (undefined: fine). */
export function vcpuRoomRefusal (spec: Pick<VmSpec, 'vcpus' | 'maxVcpus'>): string | undefined {
  const room = spec.maxVcpus
  if (room === undefined) return undefined
  if (!Number.isInteger(room) || room < spec.vcpus || room > MAX_HOTPLUG_VCPUS) return `maxVcpus (room for vCPUs online) must be a whole number from its vCPUs (${spec.vcpus}) to ${MAX_HOTPLUG_VCPUS}, got ${room}`
  return undefined
}

/** The spec as a fresh boot launches it: vCPUs added while it ran are boot vCPUs now. */
export function foldCpus (spec: VmSpec): VmSpec {
  if (spec.bootVcpus === undefined) return spec
  const { bootVcpus: _folded, ...rest } = spec
  return rest
}
