import type { meshvirt } from '@meshvirt/proto'
import { MAX_HOTPLUG_VCPUS, MAX_VCPUS, MIN_MEMORY_BYTES } from '../vm/vm-spec.js'
import { vmSpecFromWire, type VmSpec } from '../vm/vm-spec-codec.js'
import type { SizeRequest } from '../vm/vm-resize.js'
import { ControlError } from './errors.js'

const MIB = 2 ** 20

/**
 * Parse, then act (Firecracker's split): a control request is turned once into one validated action
 * of this union; the handler then routes it (here, or to the VM's owner) and runs it. Bodies the core
 * does not know are left to the parts and features that answer them (`other`).
 */

/** A VM as the operator named it: by id when given, else by name (one of the two is not empty). */
export interface VmRef {
  id: string
  name: string
}

/** What can be done to one VM, on the host that owns it. */
export type VmAction =
  | { op: 'start' }
  | { op: 'stop', force: boolean }
  /** `force`: the owner may be dead or gone; a VM this host knows of is then forgotten cluster-wide (records/). */
  | { op: 'delete', force: boolean }
  | { op: 'inspect' }
  | { op: 'readConsole', offset: number, maxBytes: number }
  | { op: 'migrate', toHost: string, params: meshvirt.v1.IMigrationParams | null }
  | { op: 'replicate', replicas: number, rpoMs: number, spreadBy: string }
  /** 0 keeps a value; `restart`: vCPUs and memory of a running VM change across a restart. */
  | { op: 'resize', size: SizeRequest, restart: boolean }

export type ControlAction =
  /** An operation on one VM: run by its owner, forwarded there once when it is another host. */
  | { kind: 'vm', vm: VmRef, action: VmAction }
  | { kind: 'create', spec: VmSpec, idempotencyKey: string }
  | { kind: 'failover', vm: VmRef, toHost: string }
  | { kind: 'drain', host: string, undrain: boolean, concurrency: number, params: meshvirt.v1.IMigrationParams | null }
  | { kind: 'listVms', localOnly: boolean }
  | { kind: 'listHosts' }
  /** Answered by a part or a feature composed beside the core (networks, events), by oneof name. */
  | { kind: 'other', body: string }

export function parseControlRequest (req: meshvirt.v1.ControlRequest): ControlAction {
  const vm = (action: VmAction, ref: meshvirt.v1.IVmRef | null | undefined): ControlAction => ({ kind: 'vm', vm: vmRef(ref), action })
  switch (req.body) {
    case undefined:
      throw new ControlError('INVALID_ARGUMENT', 'empty control request: set one operation')
    case 'createVm': {
      const idempotencyKey = req.idempotencyKey !== '' ? req.idempotencyKey : req.requestId
      if (idempotencyKey === '') throw new ControlError('INVALID_ARGUMENT', 'create needs an idempotency key')
      // Read here; checked by the broker as it takes the create (a group's members come that way too).
      return { kind: 'create', spec: vmSpecFromWire(req.createVm?.spec ?? {}), idempotencyKey }
    }
    case 'startVm': return vm({ op: 'start' }, req.startVm?.vm)
    case 'stopVm': return vm({ op: 'stop', force: req.stopVm?.force === true }, req.stopVm?.vm)
    case 'deleteVm': return vm({ op: 'delete', force: req.deleteVm?.force === true }, req.deleteVm?.vm)
    case 'inspectVm': return vm({ op: 'inspect' }, req.inspectVm?.vm)
    case 'readConsole': {
      const rc = req.readConsole as meshvirt.v1.ReadConsole
      return vm({ op: 'readConsole', offset: Number(rc.offset), maxBytes: rc.maxBytes }, rc.vm)
    }
    case 'migrateVm': {
      const m = req.migrateVm as meshvirt.v1.MigrateVm
      return vm({ op: 'migrate', toHost: m.toHost, params: m.params ?? null }, m.vm)
    }
    case 'replicateVm': {
      const r = req.replicateVm as meshvirt.v1.ReplicateVm
      return vm({ op: 'replicate', replicas: r.replicas, rpoMs: r.rpoMs, spreadBy: r.spreadBy }, r.vm)
    }
    case 'resizeVm': {
      const r = req.resizeVm as meshvirt.v1.ResizeVm
      return vm({ op: 'resize', size: parseSize(r), restart: r.restart }, r.vm)
    }
    case 'failoverVm': {
      const f = req.failoverVm as meshvirt.v1.FailoverVm
      return { kind: 'failover', vm: vmRef(f.vm), toHost: f.toHost }
    }
    case 'drainHost': {
      const d = req.drainHost as meshvirt.v1.DrainHost
      if (d.host === '') throw new ControlError('INVALID_ARGUMENT', 'name the host to drain (its id or hostname)')
      return { kind: 'drain', host: d.host, undrain: d.undrain, concurrency: d.concurrency, params: d.params ?? null }
    }
    case 'listVms': return { kind: 'listVms', localOnly: req.listVms?.localOnly === true }
    case 'listHosts': return { kind: 'listHosts' }
    default: return { kind: 'other', body: req.body }
  }
}

/** A resize's sizes, checked as `vm create` checks them; at least one is asked. */
function parseSize (r: meshvirt.v1.ResizeVm): SizeRequest {
  const size = { vcpus: r.vcpus, memoryBytes: Number(r.memoryBytes), diskBytes: Number(r.diskBytes), maxMemoryBytes: Number(r.maxMemoryBytes), maxVcpus: r.maxVcpus }
  const bad = (field: string, msg: string): never => { throw new ControlError('INVALID_ARGUMENT', msg, { field }) }
  if (size.vcpus === 0 && size.memoryBytes === 0 && size.diskBytes === 0 && size.maxMemoryBytes === 0 && size.maxVcpus === 0) bad('', 'say what to resize: --vcpus, --memory, --disk, --max-memory and/or --max-vcpus')
  if (size.maxVcpus > MAX_HOTPLUG_VCPUS) bad('max-vcpus', `--max-vcpus is at most ${MAX_HOTPLUG_VCPUS}, got ${size.maxVcpus}`)
  if (size.maxMemoryBytes % MIB !== 0) bad('max-memory', 'max memory must be a whole number of MiB')
  if (size.vcpus > MAX_VCPUS) bad('vcpus', `vcpus must be between 1 and ${MAX_VCPUS}, got ${size.vcpus}`)
  if (size.memoryBytes !== 0 && size.memoryBytes < MIN_MEMORY_BYTES) bad('memory', `memory must be at least ${MIN_MEMORY_BYTES / MIB} MiB, got ${Math.floor(size.memoryBytes / MIB)} MiB`)
  if (size.memoryBytes % MIB !== 0) bad('memory', 'memory must be a whole number of MiB')
  if (size.diskBytes % MIB !== 0) bad('disk', 'disk must be a whole number of MiB')
  return size
}

function vmRef (ref: meshvirt.v1.IVmRef | null | undefined): VmRef {
  const id = ref?.id ?? ''
  const name = ref?.name ?? ''
  if (id === '' && name === '') throw new ControlError('INVALID_ARGUMENT', 'name a VM by id or name')
  return { id, name }
}

/** Whether a VM (a summary, a row) is the one a reference names: by id when given, else by name. */
export function refMatcher (ref: VmRef): (v: { id: string, name: string }) => boolean {
  return (v) => ref.id !== '' ? v.id === ref.id : v.name === ref.name
}

/** The reference as the operator wrote it, for messages. */
export function refText (ref: VmRef): string {
  return ref.id !== '' ? ref.id : ref.name
}
