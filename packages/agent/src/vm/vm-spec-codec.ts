import type { LabelConstraint, PlacementPolicy, Resources } from '@meshvirt/placement'
import { pb, type meshvirt } from '@meshvirt/proto'
import { DEFAULT_RESTART_POLICY, restartPolicyFromWire, restartPolicyToWire, type RestartPolicy } from './restart-policy.js'

/**
 * What the operator asked for, as the agent works with it: every field present, numbers as
 * numbers, enums as names. The wire's `meshvirt.v1.VmSpec` is read once where a spec enters the
 * agent (a control request, a peer's commit, an incoming migration, a replica, the store's row) and
 * written where one leaves; nothing between handles the wire type.
 */
export interface VmSpec {
  name: string
  resources: Resources
  boot: BootSource
  constraints: LabelConstraint[]
  /** The VM's own group (for affinity rules of other VMs); '' for none. */
  group: string
  affinity: string[]
  antiAffinity: string[]
  softAffinity: string[]
  softAntiAffinity: string[]
  /** null: not asked (placement's default, bin-packing). */
  policy: PlacementPolicy | null
  /** Pinned to this host (peer id or hostname); '' for any. */
  host: string
  /** null: whichever the host has. */
  accelerator: 'kvm' | 'tcg' | null
  /** '' until the broker chooses the baseline of the hosts it may migrate among. */
  cpuModel: string
  replicas: number
  rpoMs: number
  spreadBy: string
  metadata: Record<string, string>
  notMigratable: boolean
  noBalance: boolean
  restart: RestartPolicy
  nics: VmNic[]
  /** First-boot configuration (a cloud-init seed); null: no seed is attached. */
  guest: GuestConfig | null
  /** Room to grow memory / vCPUs of the running VM; 0 for none. */
  maxMemoryBytes: number
  maxVcpus: number
}

/** A path on the owner (`image`), a kernel to boot, or a library image (`library`). '' for unset. */
export interface BootSource {
  image: string
  kernel: string
  initrd: string
  cmdline: string
  /** The library image and the digest the broker resolved it to; null when the spec names none. */
  library: { ref: string, digest: string } | null
}

export interface VmNic { network: string, ip: string, mac: string }

export interface GuestConfig { hostname: string, sshAuthorizedKeys: string[], userData: string }

const OPS: Record<number, LabelConstraint['op']> = {
  [pb.LabelConstraint.Op.OP_EQ]: 'eq',
  [pb.LabelConstraint.Op.OP_NE]: 'ne',
  [pb.LabelConstraint.Op.OP_EXISTS]: 'exists',
  [pb.LabelConstraint.Op.OP_NOT_EXISTS]: 'notExists'
}
const OPS_TO_WIRE: Record<LabelConstraint['op'], number> = { eq: pb.LabelConstraint.Op.OP_EQ, ne: pb.LabelConstraint.Op.OP_NE, exists: pb.LabelConstraint.Op.OP_EXISTS, notExists: pb.LabelConstraint.Op.OP_NOT_EXISTS }

/** A size off the wire (uint64 fields may arrive as Longs). */
export function resourcesFromWire (r: meshvirt.v1.IResources | null | undefined): Resources {
  return { vcpus: r?.vcpus ?? 0, memoryBytes: Number(r?.memoryBytes ?? 0), diskBytes: Number(r?.diskBytes ?? 0) }
}

/** The wire's spec as the agent keeps it. Total: any message decodes (defaults fill what is absent); validity is `validateVmSpec`'s. */
export function vmSpecFromWire (w: meshvirt.v1.IVmSpec): VmSpec {
  const b = w.boot ?? {}
  return {
    name: w.name ?? '',
    resources: resourcesFromWire(w.resources),
    boot: {
      image: b.image ?? '',
      kernel: b.kernel ?? '',
      initrd: b.initrd ?? '',
      cmdline: b.cmdline ?? '',
      library: b.library == null ? null : { ref: b.library.ref ?? '', digest: b.library.digest ?? '' }
    },
    // An unset op is eq, as placement has always read it.
    constraints: (w.constraints ?? []).map((c) => ({ key: c.key ?? '', op: OPS[c.op ?? 1] ?? 'eq', ...(c.value ? { value: c.value } : {}) })),
    group: w.group ?? '',
    affinity: [...(w.affinity ?? [])],
    antiAffinity: [...(w.antiAffinity ?? [])],
    softAffinity: [...(w.softAffinity ?? [])],
    softAntiAffinity: [...(w.softAntiAffinity ?? [])],
    policy: w.policy === pb.PlacementPolicy.PLACEMENT_POLICY_SPREAD ? 'spread' : w.policy === pb.PlacementPolicy.PLACEMENT_POLICY_BINPACK ? 'binpack' : null,
    host: w.host ?? '',
    accelerator: w.accelerator === pb.Accelerator.ACCELERATOR_KVM ? 'kvm' : w.accelerator === pb.Accelerator.ACCELERATOR_TCG ? 'tcg' : null,
    cpuModel: w.cpuModel ?? '',
    replicas: w.replicas ?? 0,
    rpoMs: w.rpoMs ?? 0,
    spreadBy: w.spreadBy ?? '',
    metadata: { ...(w.metadata ?? {}) },
    notMigratable: w.notMigratable === true,
    noBalance: w.noBalance === true,
    restart: restartPolicyFromWire(w.restart),
    nics: (w.nics ?? []).map((n) => ({ network: n.network ?? '', ip: n.ip ?? '', mac: n.mac ?? '' })),
    guest: w.guest == null ? null : { hostname: w.guest.hostname ?? '', sshAuthorizedKeys: [...(w.guest.sshAuthorizedKeys ?? [])], userData: w.guest.userData ?? '' },
    maxMemoryBytes: Number(w.maxMemoryBytes ?? 0),
    maxVcpus: w.maxVcpus ?? 0
  }
}

/** The spec as it leaves the agent: defaults left out, so the bytes are as short as proto3's. */
export function vmSpecToWire (s: VmSpec): meshvirt.v1.IVmSpec {
  const w: meshvirt.v1.IVmSpec = { name: s.name, resources: { vcpus: s.resources.vcpus, memoryBytes: s.resources.memoryBytes, diskBytes: s.resources.diskBytes } }
  const boot: meshvirt.v1.IBootSource = {}
  if (s.boot.image !== '') boot.image = s.boot.image
  if (s.boot.kernel !== '') boot.kernel = s.boot.kernel
  if (s.boot.initrd !== '') boot.initrd = s.boot.initrd
  if (s.boot.cmdline !== '') boot.cmdline = s.boot.cmdline
  if (s.boot.library !== null) boot.library = { ...s.boot.library }
  if (Object.keys(boot).length > 0) w.boot = boot
  if (s.constraints.length > 0) w.constraints = s.constraints.map((c) => ({ key: c.key, op: OPS_TO_WIRE[c.op], ...(c.value !== undefined ? { value: c.value } : {}) }))
  if (s.group !== '') w.group = s.group
  if (s.affinity.length > 0) w.affinity = [...s.affinity]
  if (s.antiAffinity.length > 0) w.antiAffinity = [...s.antiAffinity]
  if (s.softAffinity.length > 0) w.softAffinity = [...s.softAffinity]
  if (s.softAntiAffinity.length > 0) w.softAntiAffinity = [...s.softAntiAffinity]
  if (s.policy !== null) w.policy = s.policy === 'spread' ? pb.PlacementPolicy.PLACEMENT_POLICY_SPREAD : pb.PlacementPolicy.PLACEMENT_POLICY_BINPACK
  if (s.host !== '') w.host = s.host
  if (s.accelerator !== null) w.accelerator = s.accelerator === 'kvm' ? pb.Accelerator.ACCELERATOR_KVM : pb.Accelerator.ACCELERATOR_TCG
  if (s.cpuModel !== '') w.cpuModel = s.cpuModel
  if (s.replicas !== 0) w.replicas = s.replicas
  if (s.rpoMs !== 0) w.rpoMs = s.rpoMs
  if (s.spreadBy !== '') w.spreadBy = s.spreadBy
  if (Object.keys(s.metadata).length > 0) w.metadata = { ...s.metadata }
  if (s.notMigratable) w.notMigratable = true
  if (s.noBalance) w.noBalance = true
  if (s.restart !== DEFAULT_RESTART_POLICY) w.restart = restartPolicyToWire(s.restart)
  if (s.nics.length > 0) w.nics = s.nics.map((n) => ({ ...n }))
  if (s.guest !== null) w.guest = { hostname: s.guest.hostname, sshAuthorizedKeys: [...s.guest.sshAuthorizedKeys], userData: s.guest.userData }
  if (s.maxMemoryBytes !== 0) w.maxMemoryBytes = s.maxMemoryBytes
  if (s.maxVcpus !== 0) w.maxVcpus = s.maxVcpus
  return w
}

/** A stored spec (the store's BLOB, a group's template): the wire's bytes. */
export function decodeVmSpec (bytes: Uint8Array): VmSpec {
  return vmSpecFromWire(pb.VmSpec.decode(bytes))
}

export function encodeVmSpec (spec: VmSpec): Uint8Array {
  return pb.VmSpec.encode(vmSpecToWire(spec)).finish()
}
