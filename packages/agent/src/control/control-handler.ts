import { hostAdvertToWire, type ClusterView } from '@meshvirt/mesh'
import type { meshvirt } from '@meshvirt/proto'
import type { Logger } from '../log/logger.js'
import type { Broker } from '../negotiate/broker.js'
import { findGossipedVm } from '../negotiate/gossiped-vm.js'
import type { PeerClient } from '../negotiate/peer-client.js'
import type { VmRow } from '../store/state-store.js'
import type { HostAdminState } from '../host/admin-state.js'
import { drainHost } from '../migrate/host-drain.js'
import type { MigrationSource } from '../migrate/migration-source.js'
import type { ReplicationManager } from '../replication/replication-manager.js'
import type { VmManager } from '../vm/vm-manager.js'
import { parseControlRequest, refMatcher, refText, type ControlAction, type VmAction, type VmRef } from './control-action.js'
import { ControlError } from './errors.js'
import { failover } from './failover-action.js'
import { runVmAction, type VmActionContext } from './vm-actions.js'
import { compareText } from '../util/compare-text.js'

export interface ControlHandlerDeps {
  selfId: string
  view: ClusterView
  vms: VmManager
  broker: Broker
  peers: PeerClient
  log: Logger
  admin: HostAdminState
  /** Bodies answered by parts composed beside this handler (monitoring's listEvents), by oneof name. */
  extra?: Record<string, Handler>
  /** Absent when this host's hypervisor cannot live-migrate. */
  migrations?: MigrationSource
  /** Absent when this host's hypervisor cannot replicate disks. */
  replication?: ReplicationManager
  /** After a VM is deleted here: what other parts free for it cluster-wide (its NICs' addresses). */
  onDeleted?: (vm: VmRow) => Promise<void>
  /** The VMs whose owner is dead or gone, as this host last heard of them (records/). */
  records?: ControlRecords
}

/**
 * What the VM records add to the control API: VMs whose owner is dead or gone are listed by a
 * cluster-wide `vm ls` (unknown), shown by `vm show` when no live host has them, and forgotten
 * cluster-wide by `vm delete --force` when no owner deletes them.
 */
export interface ControlRecords {
  unknownInfos: (listed: readonly meshvirt.v1.IVmInfo[]) => meshvirt.v1.IVmInfo[]
  findUnknown: (ref: VmRef) => meshvirt.v1.IVmInfo | undefined
  forceDelete: (ref: VmRef, deleteNormally: () => Promise<meshvirt.v1.IControlResponse>) => Promise<meshvirt.v1.IControlResponse>
}

/** A drain migrates every VM of the host: give it an hour before the forwarding agent gives up. */
const DRAIN_FORWARD_TIMEOUT_MS = 60 * 60_000
/** A forwarded migration may take its whole timeout (default 10 min) plus the hand-over. */
const FORWARDED_MIGRATION_MARGIN_MS = 11 * 60_000
/** A resize across a restart: the guest's stop (ACPI, then SIGTERM) and its start again. */
const FORWARDED_RESTART_MS = 120_000
/** A peer that does not answer a cluster-wide listing within this is reported, not waited for. */
export const FAN_OUT_TIMEOUT_MS = 5_000

export type Handler = (req: meshvirt.v1.ControlRequest) => Promise<meshvirt.v1.IControlResponse>

/**
 * The control API, the same for the local CLI socket and for peers (/meshvirt/control/1.0.0): each
 * request is parsed once into an action (control-action.ts), then routed and run. Any agent accepts
 * any request; an action on a VM runs on its owner (vm-actions.ts), found through the gossiped VM
 * summaries (or by asking every host), and is forwarded there once (hops).
 */
export function createControlHandler (deps: ControlHandlerDeps): Handler {
  const { vms, peers, selfId } = deps

  const findLocal = (ref: VmRef): VmRow | undefined => ref.id !== '' ? vms.get(ref.id) : vms.findByName(ref.name)

  /** The owner as gossip has it. Not this host's own advert: callers looked in its table first, and a VM that has just migrated away is still in the advert until the next rebuild. */
  const gossipedOwner = (ref: VmRef): string | undefined => findGossipedVm(deps.view, refMatcher(ref), selfId)?.owner

  /** The owner as the hosts themselves answer (every live host is asked). */
  const askedOwner = async (ref: VmRef): Promise<string> => {
    const matches = refMatcher(ref)
    for (const { host, vms: list } of await listEverywhere()) {
      if (list.some((v) => matches({ id: v.summary?.id ?? '', name: v.summary?.name ?? '' }))) return host
    }
    throw new ControlError('NOT_FOUND', `no VM ${refText(ref)} in the cluster`)
  }

  /** A host named by id or by hostname, as the operator typed it. */
  const findHost = (name: string): string => {
    const found = deps.view.hosts().find((h) => h.hostId === name || h.advert.hostname === name)
    if (found === undefined) throw new ControlError('NOT_FOUND', `no host ${name} in the cluster (see meshvirt host ls)`)
    return found.hostId
  }

  const listEverywhere = async (): Promise<Array<{ host: string, vms: meshvirt.v1.IVmInfo[], error?: string }>> => {
    const hosts = deps.view.hosts().filter((h) => h.liveness !== 'dead').map((h) => h.hostId)
    return await Promise.all(hosts.map(async (host) => {
      if (host === selfId) return { host, vms: vms.list().map((v) => vms.info(v)) }
      try {
        const res = await peers.control(host, { hops: 1, listVms: { localOnly: true } }, FAN_OUT_TIMEOUT_MS)
        return { host, vms: res.vmList?.vms ?? [] }
      } catch (err) {
        return { host, vms: [], error: (err as Error).message }
      }
    }))
  }

  const actions: VmActionContext = {
    vms, view: deps.view, peers, log: deps.log,
    ...(deps.migrations !== undefined ? { migrations: deps.migrations } : {}),
    ...(deps.replication !== undefined ? { replication: deps.replication } : {}),
    ...(deps.onDeleted !== undefined ? { onDeleted: deps.onDeleted } : {}),
    destination: (name) => {
      if (name === '') return ''
      const id = findHost(name)
      if (id === selfId) throw new ControlError('INVALID_ARGUMENT', `the VM already runs on ${name}`)
      return id
    }
  }

  /** An action on a VM: run here when this host owns it, else forwarded (unchanged) to its owner, once. */
  const onVm = async (req: meshvirt.v1.ControlRequest, ref: VmRef, action: VmAction): Promise<meshvirt.v1.IControlResponse> => {
    const local = findLocal(ref)
    if (local !== undefined) return await runVmAction(local, action, actions)
    if (req.hops > 0) throw new ControlError('NOT_FOUND', `VM ${refText(ref)} is not on host ${selfId.slice(-12)}`)
    const timeoutMs = action.op === 'migrate'
      ? (action.params?.timeoutMs ?? 0) + FORWARDED_MIGRATION_MARGIN_MS
      : action.op === 'resize' && action.restart ? FORWARDED_RESTART_MS : undefined
    const forward = async (owner: string): Promise<meshvirt.v1.IControlResponse> => {
      if (owner === selfId) throw new ControlError('NOT_FOUND', `VM ${refText(ref)} is no longer here`)
      return await peers.control(owner, { hops: 1, requestId: req.requestId, idempotencyKey: req.idempotencyKey, ...pick(req) }, timeoutMs)
    }
    const gossiped = gossipedOwner(ref)
    // Not gossiped yet (just created): ask every host.
    if (gossiped === undefined) return await forward(await askedOwner(ref))
    try {
      return await forward(gossiped)
    } catch (err) {
      // Gossip a step behind a move (CI saw `vm start` right after `vm migrate` reach the old
      // owner): the hosts say where the VM is now. The old owner ran nothing, so asking the new
      // one is no second run.
      if ((err as { code?: string }).code !== 'NOT_FOUND') throw err
      const now = await askedOwner(ref).catch(() => gossiped)
      if (now === gossiped) throw err
      deps.log.info('forwarded to the VM\'s former owner; asking its owner now', { vm: refText(ref), from: gossiped, to: now })
      const local = now === selfId ? findLocal(ref) : undefined
      if (local !== undefined) return await runVmAction(local, action, actions)
      return await forward(now)
    }
  }

  const drain = async (req: meshvirt.v1.ControlRequest, d: Extract<ControlAction, { kind: 'drain' }>): Promise<meshvirt.v1.IControlResponse> => {
    const target = findHost(d.host)
    if (target !== selfId) {
      if (req.hops > 0) throw new ControlError('NOT_FOUND', `host ${d.host} is not this host`)
      return await peers.control(target, { hops: 1, requestId: req.requestId, drainHost: req.drainHost }, d.undrain ? undefined : DRAIN_FORWARD_TIMEOUT_MS)
    }
    if (d.undrain) {
      deps.admin.set('active')
      return { drainReport: { host: selfId, state: 'active', vms: [] } }
    }
    if (deps.migrations === undefined) throw new ControlError('UNIMPLEMENTED', 'this host\'s hypervisor cannot live-migrate, so it cannot be drained')
    const moved = await drainHost({ admin: deps.admin, vms, migrations: deps.migrations, log: deps.log }, { concurrency: d.concurrency, params: d.params })
    return { drainReport: { host: selfId, state: deps.admin.get(), vms: moved } }
  }

  return async (req) => {
    const action = parseControlRequest(req)
    const records = deps.records
    switch (action.kind) {
      case 'vm': {
        const { vm: ref, action: a } = action
        // Asked here by a client (not forwarded): the records stand in for an owner that is gone.
        if (records === undefined || req.hops > 0) return await onVm(req, ref, a)
        if (a.op === 'delete' && a.force) return await records.forceDelete(ref, async () => await onVm(req, ref, a))
        if (a.op !== 'inspect') return await onVm(req, ref, a)
        return await onVm(req, ref, a).catch((err: unknown) => {
          const unknown = (err as { code?: string }).code === 'NOT_FOUND' ? records.findUnknown(ref) : undefined
          if (unknown === undefined) throw err
          return { vm: unknown }
        })
      }
      case 'create':
        return { vm: (await deps.broker.create(action.spec, action.idempotencyKey)).vm }
      case 'failover':
        return await failover(action.vm, action.toHost, { view: deps.view, peers, log: deps.log, findLocal, findHost })
      case 'drain':
        return await drain(req, action)
      case 'listVms': {
        if (action.localOnly) return { vmList: { vms: vms.list().map((v) => vms.info(v)) } }
        const lists = await listEverywhere()
        for (const l of lists) if (l.error !== undefined) deps.log.warn('host did not answer vm ls', { peer: l.host, err: l.error })
        const listed = lists.flatMap((l) => l.vms)
        const all = [...listed, ...records?.unknownInfos(listed) ?? []].sort((a, b) => compareText(a.summary?.name ?? '', b.summary?.name ?? ''))
        return { vmList: { vms: all } }
      }
      case 'listHosts':
        return {
          hostList: {
            selfId,
            hosts: deps.view.hosts().map((h) => ({ advert: hostAdvertToWire(h.advert), liveness: h.liveness, lastHeardMs: h.lastHeardMs }))
          }
        }
      case 'other': {
        const extra = deps.extra?.[action.body]
        if (extra !== undefined) return await extra(req)
        throw new ControlError('UNIMPLEMENTED', `${action.body} is not available in this version of the agent`)
      }
    }
  }
}

/** The operation of a request, to forward it unchanged. */
function pick (req: meshvirt.v1.ControlRequest): meshvirt.v1.IControlRequest {
  switch (req.body) {
    case 'startVm': return { startVm: req.startVm }
    case 'stopVm': return { stopVm: req.stopVm }
    case 'deleteVm': return { deleteVm: req.deleteVm }
    case 'inspectVm': return { inspectVm: req.inspectVm }
    case 'readConsole': return { readConsole: req.readConsole }
    case 'migrateVm': return { migrateVm: req.migrateVm }
    case 'replicateVm': return { replicateVm: req.replicateVm }
    case 'resizeVm': return { resizeVm: req.resizeVm }
    default: return {}
  }
}
