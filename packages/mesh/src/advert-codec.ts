/**
 * HostAdvert ⇄ `meshvirt.v1.HostAdvert` bytes. Decoding never throws: it answers
 * `{ ok: false, reason }` for bytes that are not a protobuf advert ("undecodable: …") or an
 * advert outside the bounds of advert-limits.ts ("invalid: <field> …").
 */
import { pb } from '@meshvirt/proto'
import type { meshvirt } from '@meshvirt/proto'
import { multiaddr } from '@multiformats/multiaddr'
import { ADVERT_LIMITS as L, HOST_ID_PATTERN, LABEL_KEY_PATTERN } from './advert-limits.js'
import type { Accelerator, BalanceMode, BalanceSetting, HostAdvert, HostCapacity, HostLoad, HostState, ImageHolding, NetworkRecord, VmGroupRecord, Overcommit, Resources, VmRole, VmState, VmSummary, VmUsage } from './host-advert.js'

type Wire = meshvirt.v1.IHostAdvert

export type DecodeResult =
  | { ok: true, advert: HostAdvert }
  | { ok: false, kind: 'oversized' | 'undecodable' | 'invalid', reason: string }

const ACCELERATORS: readonly Accelerator[] = ['unspecified', 'kvm', 'tcg']
const HOST_STATES: readonly HostState[] = ['unspecified', 'active', 'draining', 'drained', 'leaving']
const VM_ROLES: readonly VmRole[] = ['unspecified', 'owner', 'replica']
const BALANCE_MODES: ReadonlyArray<BalanceMode | 'unspecified'> = ['unspecified', 'off', 'recommend', 'auto']
const VM_STATES: readonly VmState[] = ['unspecified', 'pending', 'starting', 'running', 'stopping', 'stopped',
  'migrating', 'crashed', 'fenced', 'deleting']

class Invalid extends Error {}

export function encodeHostAdvert (advert: HostAdvert): Uint8Array {
  return pb.HostAdvert.encode(hostAdvertToWire(advert)).finish()
}

export function decodeHostAdvert (bytes: Uint8Array): DecodeResult {
  if (bytes.length > L.maxBytes) return { ok: false, kind: 'oversized', reason: `oversized: ${bytes.length} bytes > ${L.maxBytes}` }
  let wire: meshvirt.v1.HostAdvert
  try {
    wire = pb.HostAdvert.decode(bytes)
  } catch (err) {
    return { ok: false, kind: 'undecodable', reason: `undecodable: ${err instanceof Error ? err.message : String(err)}` }
  }
  return hostAdvertFromWire(wire)
}

/** Validates a wire advert (decoded here or by the agent's codecs) into the domain type. */
export function hostAdvertFromWire (wire: Wire): DecodeResult {
  try {
    return { ok: true, advert: fromWire(wire) }
  } catch (err) {
    if (err instanceof Invalid) return { ok: false, kind: 'invalid', reason: `invalid: ${err.message}` }
    throw err
  }
}

/**
 * Validates a capacity a host sent outside an advert (the fresh capacity in a Refused):
 * the same checks as an advert's; undefined when it is not a sound capacity.
 */
export function hostCapacityFromWire (wire: meshvirt.v1.IHostCapacity | null | undefined): HostCapacity | undefined {
  try {
    return capacity(wire)
  } catch (err) {
    if (err instanceof Invalid) return undefined
    throw err
  }
}

/** The wire form, for embedding in other messages (e.g. the control API's HostStatus). */
export function hostAdvertToWire (a: HostAdvert): Wire {
  return {
    hostId: a.hostId,
    incarnation: a.incarnation,
    seq: a.seq,
    addrs: a.addrs,
    labels: a.labels,
    capacity: a.capacity,
    accelerator: ACCELERATORS.indexOf(a.accelerator),
    cpuModel: a.cpuModel,
    cpuFlagsFingerprint: a.cpuFlagsFingerprint,
    cpuFlags: a.cpuFlags,
    qemuVersion: a.qemuVersion,
    machineTypes: a.machineTypes,
    state: HOST_STATES.indexOf(a.state),
    load: a.load,
    vms: a.vms.map(({ usage, noBalance, ...vm }) => ({
      ...vm,
      role: VM_ROLES.indexOf(vm.role),
      state: VM_STATES.indexOf(vm.state),
      ...(usage !== undefined
        ? {
            usageCpuCores: usage.cpuCores,
            usageMemoryBytes: usage.memoryBytes,
            ...(usage.diskReadBps !== undefined ? { usageIo: true, usageDiskReadBps: usage.diskReadBps, usageDiskWriteBps: usage.diskWriteBps ?? 0, usageNetRxBps: usage.netRxBps ?? 0, usageNetTxBps: usage.netTxBps ?? 0 } : {})
          }
        : {}),
      ...(noBalance === true ? { noBalance: true } : {})
    })),
    sentAtMs: a.sentAtMs,
    heartbeatIntervalMs: a.heartbeatIntervalMs,
    agentVersion: a.agentVersion,
    hostname: a.hostname,
    underlay: a.underlay,
    networks: a.networks,
    images: a.images,
    imageTombstones: a.imageTombstones,
    groups: a.groups,
    groupsOwned: a.groupsOwned,
    revocations: a.revocations,
    ...(a.balance !== undefined ? { balance: { mode: BALANCE_MODES.indexOf(a.balance.mode), version: a.balance.version, setBy: a.balance.setBy } } : {})
  }
}

function fromWire (w: Wire): HostAdvert {
  const hostId = text(w.hostId, 'host_id', L.maxHostIdChars)
  if (!HOST_ID_PATTERN.test(hostId)) throw new Invalid('host_id is not a base58 peer id')
  const incarnation = count(w.incarnation, 'incarnation')
  if (incarnation < 1) throw new Invalid('incarnation must be ≥ 1')
  const heartbeatIntervalMs = count(w.heartbeatIntervalMs, 'heartbeat_interval_ms')
  if (heartbeatIntervalMs < 1 || heartbeatIntervalMs > L.maxHeartbeatIntervalMs) {
    throw new Invalid(`heartbeat_interval_ms must be in 1..${L.maxHeartbeatIntervalMs}`)
  }
  return {
    hostId,
    incarnation,
    seq: count(w.seq, 'seq'),
    addrs: list(w.addrs, 'addrs', L.maxAddrs).map((s, i) => address(s, `addrs[${i}]`)),
    labels: labels(w.labels),
    capacity: capacity(w.capacity),
    accelerator: enumValue(w.accelerator, ACCELERATORS, 'accelerator'),
    cpuModel: text(w.cpuModel, 'cpu_model', L.maxTextChars, true),
    cpuFlagsFingerprint: text(w.cpuFlagsFingerprint, 'cpu_flags_fingerprint', L.maxTextChars, true),
    cpuFlags: list(w.cpuFlags, 'cpu_flags', L.maxCpuFlags).map((f, i) => text(f, `cpu_flags[${i}]`, L.maxCpuFlagChars)),
    qemuVersion: text(w.qemuVersion, 'qemu_version', L.maxTextChars, true),
    machineTypes: list(w.machineTypes, 'machine_types', L.maxMachineTypes).map((m, i) => text(m, `machine_types[${i}]`, L.maxTextChars)),
    state: enumValue(w.state, HOST_STATES, 'state'),
    load: load(w.load),
    vms: list(w.vms, 'vms', L.maxVms).map((vm, i) => vmSummary(vm, `vms[${i}]`)),
    sentAtMs: count(w.sentAtMs, 'sent_at_ms'),
    heartbeatIntervalMs,
    agentVersion: text(w.agentVersion, 'agent_version', L.maxTextChars, true),
    hostname: text(w.hostname, 'hostname', L.maxTextChars, true),
    underlay: text(w.underlay, 'underlay', L.maxAddrChars, true),
    networks: list(w.networks, 'networks', L.maxNetworks).map((n, i) => network(n, `networks[${i}]`)),
    images: list(w.images, 'images', L.maxImages).map((m, i) => imageHolding(m, `images[${i}]`)),
    imageTombstones: list(w.imageTombstones, 'image_tombstones', L.maxImages).map((t, i) => ({
      ref: text(t.ref, `image_tombstones[${i}].ref`, L.maxTextChars),
      digest: text(t.digest, `image_tombstones[${i}].digest`, L.maxTextChars),
      deletedAtMs: count(t.deletedAtMs, `image_tombstones[${i}].deleted_at_ms`)
    })),
    ...balanceSetting(w.balance),
    groups: list(w.groups, 'groups', L.maxGroups).map((g, i) => vmGroup(g, `groups[${i}]`)),
    groupsOwned: list(w.groupsOwned, 'groups_owned', L.maxGroups).map((id, i) => text(id, `groups_owned[${i}]`, L.maxTextChars)),
    revocations: list(w.revocations, 'revocations', L.maxRevocations).map((r, i) => ({
      user: text(r.user, `revocations[${i}].user`, L.maxTextChars),
      beforeMs: count(r.beforeMs, `revocations[${i}].before_ms`)
    }))
  }
}

function vmGroup (g: meshvirt.v1.IVmGroup, field: string): VmGroupRecord {
  const template = g.template ?? new Uint8Array()
  if (template.length > L.maxGroupTemplateBytes) throw new Invalid(`${field}.template exceeds ${L.maxGroupTemplateBytes} bytes`)
  return {
    name: text(g.name, `${field}.name`, L.maxTextChars),
    id: text(g.id, `${field}.id`, L.maxTextChars),
    count: count(g.count, `${field}.count`),
    template: Uint8Array.from(template),
    revision: count(g.revision, `${field}.revision`),
    updatedAtMs: count(g.updatedAtMs, `${field}.updated_at_ms`),
    updatedBy: text(g.updatedBy, `${field}.updated_by`, L.maxHostIdChars, true),
    createdAtMs: count(g.createdAtMs, `${field}.created_at_ms`),
    deletedAtMs: count(g.deletedAtMs, `${field}.deleted_at_ms`)
  }
}

function balanceSetting (b: meshvirt.v1.IBalanceSetting | null | undefined): { balance?: BalanceSetting } {
  if (b == null) return {}
  const mode = enumValue(b.mode, BALANCE_MODES, 'balance.mode')
  // An unset mode is an agent with nothing to say: as if the field were absent.
  if (mode === 'unspecified') return {}
  return { balance: { mode, version: count(b.version, 'balance.version'), setBy: text(b.setBy, 'balance.set_by', L.maxHostIdChars, true) } }
}

function capacity (c: meshvirt.v1.IHostCapacity | null | undefined): HostCapacity {
  if (c == null) throw new Invalid('capacity is missing')
  return {
    total: resources(c.total, 'capacity.total'),
    hostReserved: resources(c.hostReserved, 'capacity.host_reserved'),
    allocated: resources(c.allocated, 'capacity.allocated'),
    reservations: resources(c.reservations, 'capacity.reservations'),
    overcommit: overcommit(c.overcommit)
  }
}

function resources (r: meshvirt.v1.IResources | null | undefined, field: string): Resources {
  // An absent Resources message means zero of everything (proto3 default).
  return {
    vcpus: count(r?.vcpus, `${field}.vcpus`),
    memoryBytes: count(r?.memoryBytes, `${field}.memory_bytes`),
    diskBytes: count(r?.diskBytes, `${field}.disk_bytes`)
  }
}

function overcommit (o: meshvirt.v1.IOvercommit | null | undefined): Overcommit {
  if (o == null) throw new Invalid('capacity.overcommit is missing')
  const ratio = (v: number | null | undefined, name: string): number => {
    const x = v ?? 0
    if (!Number.isFinite(x) || x <= 0 || x > L.maxOvercommit) throw new Invalid(`capacity.overcommit.${name} must be in (0, ${L.maxOvercommit}]`)
    return x
  }
  return { cpu: ratio(o.cpu, 'cpu'), memory: ratio(o.memory, 'memory'), disk: ratio(o.disk, 'disk') }
}

function load (l: meshvirt.v1.IHostLoad | null | undefined): HostLoad {
  const cpuUtilization = real(l?.cpuUtilization, 'load.cpu_utilization')
  if (cpuUtilization > 1) throw new Invalid('load.cpu_utilization must be in 0..1')
  return {
    load1: real(l?.load1, 'load.load1'),
    cpuUtilization,
    memoryUsedBytes: count(l?.memoryUsedBytes, 'load.memory_used_bytes'),
    diskUsedBytes: count(l?.diskUsedBytes, 'load.disk_used_bytes'),
    vmsRunning: count(l?.vmsRunning, 'load.vms_running'),
    ...rates(l)
  }
}

/** The I/O rates of a load, those present (an older agent sends none). */
function rates (l: meshvirt.v1.IHostLoad | null | undefined): Pick<HostLoad, 'diskReadBps' | 'diskWriteBps' | 'netRxBps' | 'netTxBps'> {
  const out: Pick<HostLoad, 'diskReadBps' | 'diskWriteBps' | 'netRxBps' | 'netTxBps'> = {}
  for (const [key, field] of [['diskReadBps', 'disk_read_bps'], ['diskWriteBps', 'disk_write_bps'], ['netRxBps', 'net_rx_bps'], ['netTxBps', 'net_tx_bps']] as const) {
    const v = l?.[key]
    if (v !== undefined && v !== null && v !== 0) out[key] = real(v, `load.${field}`)
  }
  return out
}

function vmSummary (vm: meshvirt.v1.IVmSummary, field: string): VmSummary {
  return {
    id: text(vm.id, `${field}.id`, L.maxVmIdChars),
    name: text(vm.name, `${field}.name`, L.maxTextChars, true),
    epoch: count(vm.epoch, `${field}.epoch`),
    role: enumValue(vm.role, VM_ROLES, `${field}.role`),
    state: enumValue(vm.state, VM_STATES, `${field}.state`),
    resources: resources(vm.resources, `${field}.resources`),
    owner: text(vm.owner, `${field}.owner`, L.maxHostIdChars, true),
    group: text(vm.group, `${field}.group`, L.maxTextChars, true),
    nics: list(vm.nics, `${field}.nics`, L.maxNics).map((n, i) => ({
      network: text(n.network, `${field}.nics[${i}].network`, L.maxTextChars),
      ip: text(n.ip, `${field}.nics[${i}].ip`, L.maxTextChars, true),
      mac: text(n.mac, `${field}.nics[${i}].mac`, L.maxTextChars)
    })),
    ...vmUsage(vm, field),
    ...(vm.noBalance === true ? { noBalance: true } : {}),
    ...(Number(vm.replicaLagMs ?? 0) > 0 ? { replicaLagMs: count(vm.replicaLagMs, `${field}.replica_lag_ms`) } : {})
  }
}

function vmUsage (vm: meshvirt.v1.IVmSummary, field: string): Pick<VmSummary, 'usage'> {
  const memoryBytes = count(vm.usageMemoryBytes, `${field}.usage_memory_bytes`)
  if (memoryBytes === 0) return {}
  const usage: VmUsage = { cpuCores: real(vm.usageCpuCores, `${field}.usage_cpu_cores`), memoryBytes }
  if (vm.usageIo === true) {
    for (const [key, wire, name] of [['diskReadBps', 'usageDiskReadBps', 'usage_disk_read_bps'], ['diskWriteBps', 'usageDiskWriteBps', 'usage_disk_write_bps'], ['netRxBps', 'usageNetRxBps', 'usage_net_rx_bps'], ['netTxBps', 'usageNetTxBps', 'usage_net_tx_bps']] as const) {
      usage[key] = real(vm[wire], `${field}.${name}`)
    }
  }
  return { usage }
}

function network (n: meshvirt.v1.INetwork, field: string): NetworkRecord {
  return {
    name: text(n.name, `${field}.name`, L.maxTextChars),
    id: text(n.id, `${field}.id`, L.maxTextChars),
    vni: count(n.vni, `${field}.vni`),
    subnet: text(n.subnet, `${field}.subnet`, L.maxTextChars),
    gateway: text(n.gateway, `${field}.gateway`, L.maxTextChars),
    mtu: count(n.mtu, `${field}.mtu`),
    nat: n.nat === true,
    dhcp: n.dhcp === true,
    createdAtMs: count(n.createdAtMs, `${field}.created_at_ms`),
    deletedAtMs: count(n.deletedAtMs, `${field}.deleted_at_ms`)
  }
}

function imageHolding (m: meshvirt.v1.IImageHolding, field: string): ImageHolding {
  const have = m.have ?? new Uint8Array()
  if (have.length > L.maxHaveBytes) throw new Invalid(`${field}.have exceeds ${L.maxHaveBytes} bytes`)
  return {
    digest: text(m.digest, `${field}.digest`, L.maxTextChars),
    sizeBytes: count(m.sizeBytes, `${field}.size_bytes`),
    format: text(m.format, `${field}.format`, L.maxTextChars),
    refs: list(m.refs, `${field}.refs`, L.maxImageRefs).map((r, i) => text(r, `${field}.refs[${i}]`, L.maxTextChars)),
    chunkCount: count(m.chunkCount, `${field}.chunk_count`),
    have: Uint8Array.from(have),
    namedAtMs: count(m.namedAtMs, `${field}.named_at_ms`),
    usedBy: list(m.usedBy, `${field}.used_by`, L.maxVms).map((v, i) => text(v, `${field}.used_by[${i}]`, L.maxVmIdChars))
  }
}

function labels (m: Record<string, string> | null | undefined): Record<string, string> {
  const entries = Object.entries(m ?? {})
  if (entries.length > L.maxLabels) throw new Invalid(`labels has ${entries.length} entries > ${L.maxLabels}`)
  const out: Record<string, string> = {}
  for (const [k, v] of entries) {
    if (k.length > L.maxLabelKeyChars || !LABEL_KEY_PATTERN.test(k)) throw new Invalid(`label key ${JSON.stringify(k.slice(0, 80))} is not a valid key`)
    out[k] = text(v, `labels[${k}]`, L.maxLabelValueChars, true)
  }
  return out
}

function address (s: string, field: string): string {
  const a = text(s, field, L.maxAddrChars)
  try {
    multiaddr(a)
  } catch {
    throw new Invalid(`${field} is not a multiaddr`)
  }
  return a
}

function list<T> (v: T[] | null | undefined, field: string, max: number): T[] {
  const xs = v ?? []
  if (!Array.isArray(xs)) throw new Invalid(`${field} is not a list`)
  if (xs.length > max) throw new Invalid(`${field} has ${xs.length} entries > ${max}`)
  return xs
}

function text (v: unknown, field: string, max: number, allowEmpty = false): string {
  const s = v ?? ''
  if (typeof s !== 'string') throw new Invalid(`${field} is not a string`)
  if (!allowEmpty && s.length === 0) throw new Invalid(`${field} is empty`)
  if (s.length > max) throw new Invalid(`${field} is longer than ${max} characters`)
  return s
}

/**
 * uint32/uint64 as a safe non-negative integer. protobufjs without Long decodes present
 * uint64 fields to numbers, but an *absent* one (proto3 omits zeros) reads the prototype
 * default, which the generated code built as a Long {low, high} before Long was turned off.
 */
function count (v: unknown, field: string): number {
  const n = isLongLike(v) ? v.high * 2 ** 32 + (v.low >>> 0) : v ?? 0
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new Invalid(`${field} is not a non-negative integer below 2^53`)
  return n
}

function real (v: unknown, field: string): number {
  const n = v ?? 0
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw new Invalid(`${field} is not a finite non-negative number`)
  return n
}

function enumValue<T> (v: unknown, names: readonly T[], field: string): T {
  const i = v ?? 0
  const name = typeof i === 'number' ? names[i] : undefined
  if (name === undefined) throw new Invalid(`${field} has unknown value ${String(i)}`)
  return name
}

function isLongLike (v: unknown): v is { low: number, high: number } {
  return typeof v === 'object' && v !== null && typeof (v as { low?: unknown }).low === 'number' && typeof (v as { high?: unknown }).high === 'number'
}
