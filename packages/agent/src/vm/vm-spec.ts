import { createHash } from 'node:crypto'
import type { Resources } from '@meshvirt/placement'
import type { meshvirt } from '@meshvirt/proto'
import type { VmSpec as DriverSpec } from '@meshvirt/hypervisor'
import { ControlError } from '../control/errors.js'
import { IMAGE_DIGEST, parseImageRef } from '../images/image-ref.js'
import { MAX_REPLICAS, MAX_RPO_MS, MIN_RPO_MS } from '../replication/replica-plan.js'
import { validateGuestConfig } from '../guest/guest-config-rules.js'
import { vmSpecFromWire, type VmSpec } from './vm-spec-codec.js'

const MIB = 2 ** 20
export const VM_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
/** The smallest guest worth starting (the test guest needs ≥ 96 MiB). */
export const MIN_MEMORY_BYTES = 32 * MIB
export const MAX_VCPUS = 256
/** As the hypervisor bounds a room for vCPUs online (MAX_HOTPLUG_VCPUS). */
export const MAX_HOTPLUG_VCPUS = 64

/**
 * A spec as it enters the agent (a control request, a peer's commit, an incoming migration, a
 * replica): read from the wire and checked, once. Throws INVALID_ARGUMENT saying what to fix.
 */
export function parseVmSpec (wire: meshvirt.v1.IVmSpec): VmSpec {
  const spec = vmSpecFromWire(wire)
  validateVmSpec(spec)
  return spec
}

/**
 * Checks a VM spec received from a client or a peer; throws INVALID_ARGUMENT saying what to fix,
 * with `details.field` the spec's field at fault (its path, as VmSpec names it: `resources.vcpus`,
 * `nics[1].network`), which the CLI turns back into its flag.
 */
export function validateVmSpec (spec: VmSpec): void {
  const bad = (field: string, msg: string): never => { throw new ControlError('INVALID_ARGUMENT', msg, { field }) }
  const name = spec.name
  if (!VM_NAME.test(name)) bad('name', `VM name '${name}' must be 1–63 lowercase letters, digits or '-', starting and ending with a letter or digit`)
  const { vcpus, memoryBytes: mem, diskBytes: disk } = spec.resources
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > MAX_VCPUS) bad('resources.vcpus', `vcpus must be between 1 and ${MAX_VCPUS}, got ${vcpus}`)
  if (mem < MIN_MEMORY_BYTES) bad('resources.memoryBytes', `memory must be at least ${MIN_MEMORY_BYTES / MIB} MiB, got ${Math.floor(mem / MIB)} MiB`)
  if (mem % MIB !== 0) bad('resources.memoryBytes', 'memory must be a whole number of MiB')
  const maxVcpus = spec.maxVcpus
  if (maxVcpus !== 0 && (maxVcpus < vcpus || maxVcpus > MAX_HOTPLUG_VCPUS)) bad('maxVcpus', `--max-vcpus must be from the vCPUs (${vcpus}) to ${MAX_HOTPLUG_VCPUS}, got ${maxVcpus}`)
  if (disk % MIB !== 0) bad('resources.diskBytes', 'disk must be a whole number of MiB')
  const maxMemory = spec.maxMemoryBytes
  if (maxMemory !== 0 && (maxMemory < mem || maxMemory % MIB !== 0)) bad('maxMemoryBytes', `--max-memory must be a whole number of MiB and at least the memory (${Math.floor(mem / MIB)} MiB), got ${Math.floor(maxMemory / MIB)} MiB`)
  const boot = spec.boot
  const hasKernel = boot.kernel !== ''
  const hasImage = boot.image !== ''
  const library = boot.library?.ref ?? ''
  // With --kernel too, the kernel boots and the image is the disk's base (a cloud image's own kernel, say).
  if (hasImage && library !== '') bad('boot', 'give the base image once: a file (--image /path) or a library image (--image NAME)')
  if (!hasKernel && !hasImage && library === '') bad('boot', 'a VM needs something to boot: --image NAME (from the library), --image FILE, or --kernel FILE [--initrd FILE]')
  if ((hasImage || library !== '') && disk === 0) bad('resources.diskBytes', '--image needs a --disk size for the VM\'s own overlay disk')
  if (library !== '') withField('boot.library.ref', () => parseImageRef(library))
  const digest = boot.library?.digest ?? ''
  if (digest !== '' && !IMAGE_DIGEST.test(digest)) bad('boot.library.digest', `library image digest '${digest}' is not sha256:<64 hex digits>`)
  validateReplication(spec)
  const nics = spec.nics
  if (nics.length > MAX_NICS) bad('nics', `a VM has at most ${MAX_NICS} NICs (--net), got ${nics.length}`)
  for (const [i, nic] of nics.entries()) if (!NETWORK_NAME.test(nic.network)) bad(`nics[${i}].network`, `--net '${nic.network}' is not a network name`)
  validateGuestConfig(spec.guest)
}

/** A check that throws a ControlError without a field gets `field`. */
function withField<T> (field: string, check: () => T): T {
  try {
    return check()
  } catch (err) {
    if (err instanceof ControlError && err.details.field === undefined) throw new ControlError(err.code, err.message, { ...err.details, field })
    throw err
  }
}

/** PCI slot 2, functions 0–3 (the hypervisor's argv). */
export const MAX_NICS = 4
/** As network/network-request.ts names networks. */
const NETWORK_NAME = /^[a-z0-9][a-z0-9-]{0,30}$/

/** A label key, as hosts are labelled (`--label site=a`). */
const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,62})?$/

/** `replicas`, `rpo_ms`, `spread_by` of a spec: also checked alone by `vm replicate`. */
export function validateReplication (spec: Pick<VmSpec, 'replicas' | 'rpoMs' | 'spreadBy' | 'resources'>): void {
  const bad = (field: string, msg: string): never => { throw new ControlError('INVALID_ARGUMENT', msg, { field }) }
  const replicas = spec.replicas
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > MAX_REPLICAS) bad('replicas', `replicas must be between 0 and ${MAX_REPLICAS}, got ${replicas}`)
  const rpo = spec.rpoMs
  if (rpo !== 0 && (rpo < MIN_RPO_MS || rpo > MAX_RPO_MS)) bad('rpoMs', `rpo must be between ${MIN_RPO_MS / 1000} s and ${MAX_RPO_MS / 3_600_000} h, got ${rpo} ms`)
  const spreadBy = spec.spreadBy
  if (spreadBy !== '' && !LABEL_KEY.test(spreadBy)) bad('spreadBy', `--spread-by '${spreadBy}' is not a label key (letters, digits, . _ / -)`)
  if (replicas > 0 && spec.resources.diskBytes === 0) bad('resources.diskBytes', 'replicas copy the VM\'s disk: give it a --disk')
}

/** The spec's size, as a value of its own (specs are frozen once stored). */
export function specResources (spec: Pick<VmSpec, 'resources'>): Resources {
  return { ...spec.resources }
}

/**
 * The VM id: derived from the idempotency key, so a retried create names the same VM
 * everywhere (a host refuses to commit an id it already owns).
 */
export function vmIdFor (idempotencyKey: string): string {
  return 'vm-' + createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 16)
}

/**
 * The driver's spec for a VM record: one disk `vda` (a qcow2 overlay on the image, or blank). A
 * library image's base path is filled in by the image resource, once it is on this host.
 */
export function driverSpec (id: string, spec: VmSpec): DriverSpec {
  const { vcpus, memoryBytes, diskBytes } = spec.resources
  const boot = spec.boot
  const diskMiB = Math.floor(diskBytes / MIB)
  return {
    id,
    vcpus,
    memoryMiB: Math.floor(memoryBytes / MIB),
    boot: boot.kernel !== ''
      ? { kind: 'kernel', kernel: boot.kernel, ...(boot.initrd !== '' ? { initrd: boot.initrd } : {}), ...(boot.cmdline !== '' ? { cmdline: boot.cmdline } : {}) }
      : { kind: 'disk' },
    disks: diskMiB > 0 ? [{ name: 'vda', sizeMiB: diskMiB, ...(boot.image !== '' ? { base: boot.image } : {}) }] : [],
    ...(spec.maxMemoryBytes > 0 ? { maxMemoryMiB: Math.floor(spec.maxMemoryBytes / MIB) } : {}),
    ...(spec.maxVcpus > 0 ? { maxVcpus: spec.maxVcpus } : {}),
    ...(spec.cpuModel !== '' ? { cpuModel: spec.cpuModel } : {})
  }
}
