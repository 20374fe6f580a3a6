import { MAX_IFNAME, MAX_NICS, MIN_MEMORY_MIB } from './constants.js'
import { vcpuRoomRefusal } from './cpu-layout.js'
import { InvalidSpecError, ResourcesTooLargeError } from './errors.js'
import type { NicSpec, VmSpec } from './types.js'

const ID_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/
const DISK_NAME_RE = /^[a-z][a-z0-9]{0,15}$/
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/
const TAP_RE = new RegExp(`^[A-Za-z0-9_.-]{1,${MAX_IFNAME}}$`)

export interface HostLimits {
  cpus: number
  memoryMiB: number
}

/**
 * Pure checks of a VM spec against itself and the host's size. Paths are checked by the driver
 * (it knows its data dir); this only refuses what no host could run.
 */
export function validateSpec (spec: VmSpec, host: HostLimits): void {
  if (typeof spec.id !== 'string' || !ID_RE.test(spec.id) || spec.id.includes('..')) {
    throw new InvalidSpecError(`VM id ${JSON.stringify(spec.id)} is invalid: use 1–63 of [a-z0-9._-], starting with a letter or digit`)
  }
  if (!Number.isInteger(spec.vcpus) || spec.vcpus < 1) {
    throw new InvalidSpecError(`VM ${spec.id}: vcpus must be a positive integer, got ${spec.vcpus}`)
  }
  if (!Number.isInteger(spec.memoryMiB) || spec.memoryMiB < MIN_MEMORY_MIB) {
    throw new InvalidSpecError(`VM ${spec.id}: memoryMiB must be an integer ≥ ${MIN_MEMORY_MIB}, got ${spec.memoryMiB}`)
  }
  if (spec.maxMemoryMiB !== undefined && (!Number.isInteger(spec.maxMemoryMiB) || spec.maxMemoryMiB < spec.memoryMiB)) {
    throw new InvalidSpecError(`VM ${spec.id}: maxMemoryMiB (room to grow online) must be a whole number ≥ its memory (${spec.memoryMiB} MiB), got ${spec.maxMemoryMiB}`)
  }
  const room = vcpuRoomRefusal(spec)
  if (room !== undefined) throw new InvalidSpecError(`VM ${spec.id}: ${room}`)
  if (spec.vcpus > host.cpus) {
    throw new ResourcesTooLargeError(`VM ${spec.id}: ${spec.vcpus} vCPUs exceed this host's ${host.cpus} CPUs; ask for fewer or place it on a bigger host`)
  }
  if (spec.memoryMiB > host.memoryMiB) {
    throw new ResourcesTooLargeError(`VM ${spec.id}: ${spec.memoryMiB} MiB of memory exceed this host's ${host.memoryMiB} MiB; ask for less or place it on a bigger host`)
  }
  if (spec.boot?.kind === 'kernel') {
    if (typeof spec.boot.kernel !== 'string' || spec.boot.kernel === '') throw new InvalidSpecError(`VM ${spec.id}: kernel boot needs a kernel path`)
  } else if (spec.boot?.kind !== 'disk') {
    throw new InvalidSpecError(`VM ${spec.id}: boot must be {kind: 'kernel', …} or {kind: 'disk'}`)
  }
  const disks = spec.disks ?? []
  const names = new Set<string>()
  for (const disk of disks) {
    if (!DISK_NAME_RE.test(disk.name)) throw new InvalidSpecError(`VM ${spec.id}: disk name ${JSON.stringify(disk.name)} is invalid: use [a-z][a-z0-9]{0,15}, e.g. vda`)
    if (names.has(disk.name)) throw new InvalidSpecError(`VM ${spec.id}: disk name ${disk.name} is used twice`)
    names.add(disk.name)
    if (!Number.isInteger(disk.sizeMiB) || disk.sizeMiB < 1) throw new InvalidSpecError(`VM ${spec.id}: disk ${disk.name} needs an integer sizeMiB ≥ 1`)
  }
  if (spec.boot.kind === 'disk' && disks.length === 0) throw new InvalidSpecError(`VM ${spec.id}: disk boot needs at least one disk`)
  validateNics(spec.id, spec.nics)
}

/** MACs and tap names: well-formed, unique, at most MAX_NICS (they share one PCI slot). */
function validateNics (id: string, nics: NicSpec[] | undefined): void {
  if (nics === undefined) return
  if (!Array.isArray(nics)) throw new InvalidSpecError(`VM ${id}: nics must be an array`)
  if (nics.length > MAX_NICS) throw new InvalidSpecError(`VM ${id}: nics: ${nics.length} NICs, at most ${MAX_NICS}`)
  const macs = new Set<string>()
  const taps = new Set<string>()
  nics.forEach((nic, i) => {
    const { mac, tap } = nic ?? {}
    if (typeof mac !== 'string' || !MAC_RE.test(mac)) throw new InvalidSpecError(`VM ${id}: nics[${i}].mac: ${JSON.stringify(mac)} is not a lowercase xx:xx:xx:xx:xx:xx MAC`)
    // The group bit (lowest bit of the first octet) makes a multicast address no NIC may own.
    if ((Number.parseInt(mac.slice(0, 2), 16) & 1) === 1) throw new InvalidSpecError(`VM ${id}: nics[${i}].mac: ${mac} is multicast; a NIC needs a unicast MAC (even first octet)`)
    if (typeof tap !== 'string' || tap === '.' || tap === '..' || !TAP_RE.test(tap)) throw new InvalidSpecError(`VM ${id}: nics[${i}].tap: ${JSON.stringify(tap)} is not an interface name: use 1–${MAX_IFNAME} of [A-Za-z0-9_.-]`)
    if (macs.has(mac)) throw new InvalidSpecError(`VM ${id}: nics[${i}].mac: ${mac} is used by another NIC`)
    if (taps.has(tap)) throw new InvalidSpecError(`VM ${id}: nics[${i}].tap: ${tap} is used by another NIC`)
    macs.add(mac)
    taps.add(tap)
  })
}

/** The spec as the VM keeps it: an imported image was only the disk's starting contents. */
export function withoutImports (spec: VmSpec): VmSpec {
  if (spec.disks === undefined) return spec
  return { ...spec, disks: spec.disks.map(({ importFrom: _imported, ...disk }) => disk) }
}
