/**
 * An amount of the three resources a host hands out, as in `Resources` of proto/common.proto.
 * Sizes are whole bytes; uint64 on the wire decodes to a plain number (safe up to 2^53 B = 8 PiB).
 */
export interface Resources {
  vcpus: number
  memoryBytes: number
  diskBytes: number
}

export const NO_RESOURCES: Readonly<Resources> = Object.freeze({ vcpus: 0, memoryBytes: 0, diskBytes: 0 })

export const MIB = 1024 * 1024
export const GIB = 1024 * MIB

export function addResources (a: Resources, b: Resources): Resources {
  return { vcpus: a.vcpus + b.vcpus, memoryBytes: a.memoryBytes + b.memoryBytes, diskBytes: a.diskBytes + b.diskBytes }
}

export function subtractResources (a: Resources, b: Resources): Resources {
  return { vcpus: a.vcpus - b.vcpus, memoryBytes: a.memoryBytes - b.memoryBytes, diskBytes: a.diskBytes - b.diskBytes }
}

/** True when `need` fits in `free` on every dimension. */
export function fitsWithin (need: Resources, free: Resources): boolean {
  return need.vcpus <= free.vcpus && need.memoryBytes <= free.memoryBytes && need.diskBytes <= free.diskBytes
}
