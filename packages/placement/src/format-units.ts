import { GIB, MIB } from './resources.js'

/** Memory reads best in whole MiB: "4096 MiB" is what operators type into `-m`. */
export function formatMemory (bytes: number): string {
  return `${Math.floor(bytes / MIB)} MiB`
}

/** Disk reads best in GiB once it is that large. */
export function formatDisk (bytes: number): string {
  if (Math.abs(bytes) < GIB) return formatMemory(bytes)
  const gib = bytes / GIB
  return `${Number.isInteger(gib) ? gib : gib.toFixed(1)} GiB`
}

export function formatVcpus (vcpus: number): string {
  return `${vcpus} vCPU${vcpus === 1 ? '' : 's'}`
}
