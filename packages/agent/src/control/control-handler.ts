import { hostAdvertToWire, type ClusterView } from '@meshvirt/mesh'
import { pb, type meshvirt } from '@meshvirt/proto'
import type { Logger } from '../log/logger.js'
import type { Broker } from '../negotiate/broker.js'
import { findGossipedVm } from '../negotiate/gossiped-vm.js'
import { claimHolders, rebindName } from '../negotiate/name-authority.js'
import type { PeerClient } from '../negotiate/peer-client.js'
import type { VmRow } from '../store/state-store.js'
import type { HostAdminState } from '../host/admin-state.js'
import { drainHost } from '../migrate/host-drain.js'
import { assertMigratable } from '../migrate/migratable.js'
import type { MigrationSource } from '../migrate/migration-source.js'
import type { ReplicationManager } from '../replication/replication-manager.js'
import type { VmManager } from '../vm/vm-manager.js'
import { ControlError } from './errors.js'

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
}

/** A promotion creates the VM from its replica and starts QEMU. */
const PROMOTE_TIMEOUT_MS = 3 * 60_000
/** How long `vm failover` waits for the replica group's own election when the lease decides. */
export const ELECTION_WAIT_MS = 30_000

/** A drain migrates every VM of the host: give it an hour before the forwarding agent gives up. */
const DRAIN_FORWARD_TIMEOUT_MS = 60 * 60_000
/** A forwarded migration may take its whole timeout (default 10 min) plus the hand-over. */
const FORWARDED_MIGRATION_MARGIN_MS = 11 * 60_000
/** A peer that does not answer a cluster-wide listing within this is reported, not waited for. */
export const FAN_OUT_TIMEOUT_MS = 5_000

export type Handler = (req: meshvirt.v1.ControlRequest) => Promise<meshvirt.v1.IControlResponse>

/**
 * The control API, the same for the local CLI socket and for peers (/meshvirt/control/1.0.0):
 * any agent accepts any request; operations on a VM run on its owner, found through the
 * gossiped VM summaries (or by asking every host), and are forwarded there once (hops).
 */
export function createControlHandler (deps: ControlHandlerDeps): Handler {
  const { vms, peers, selfId } = deps

  const findLocal = (ref: meshvirt.v1.IVmRef | null | undefined): VmRow | undefined => {
    if ((ref?.id ?? '') !== '') return vms.get(ref?.id as string)
    if ((ref?.name ?? '') !== '') return vms.findByName(ref?.name as string)
    throw new ControlError('INVALID_ARGUMENT', 'name a VM by id or name')
  }

  const locate = async (ref: meshvirt.v1.IVmRef): Promise<string> => {
    const matches = refMatcher(ref)
    // Not this host's own advert: callers looked in its table first, and a VM that has just migrated
    // away is still in the advert until the next rebuild ("no longer here" right after a move).
    const gossiped = findGossipedVm(deps.view, matches, selfId)
    if (gossiped !== undefined) return gossiped.owner
    // Not gossiped yet (just created): ask every host.
    const lists = await listEverywhere()
    for (const { host, vms: list } of lists) {
      if (list.some((v) => matches({ id: v.summary?.id ?? '', name: v.summary?.name ?? '' }))) return host
    }
    throw new ControlError('NOT_FOUND', `no VM ${ref.id !== '' && ref.id != null ? ref.id : ref.name} in the cluster`)
  }

  /** A host named by id or by hostname, as the operator typed it. */
  const findHost = (name: string): string => {
    const found = deps.view.hosts().find((h) => h.hostId === name || h.advert.hostname === name)
    if (found === undefined) throw new ControlError('NOT_FOUND', `no host ${name} in the cluster (see meshvirt host ls)`)
    return found.hostId
  }
  /** A migration's destination: none (placement chooses) or another host. */
  const resolveHost = (name: string): string => {
    if (name === '') return ''
    const id = findHost(name)
    if (id === selfId) throw new ControlError('INVALID_ARGUMENT', `the VM already runs on ${name}`)
    return id
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

  const onVm = async (req: meshvirt.v1.ControlRequest, ref: meshvirt.v1.IVmRef | null | undefined, act: (vm: VmRow) => Promise<meshvirt.v1.IControlResponse>): Promise<meshvirt.v1.IControlResponse> => {
    const local = findLocal(ref)
    if (local !== undefined) return await act(local)
    if (req.hops > 0) throw new ControlError('NOT_FOUND', `VM ${ref?.id ?? ref?.name} is not on host ${selfId.slice(-12)}`)
    const owner = await locate(ref ?? {})
    if (owner === selfId) throw new ControlError('NOT_FOUND', `VM ${ref?.id ?? ref?.name} is no longer here`)
    const timeoutMs = req.body === 'migrateVm' ? (req.migrateVm?.params?.timeoutMs ?? 0) + FORWARDED_MIGRATION_MARGIN_MS : undefined
    return await peers.control(owner, { hops: 1, requestId: req.requestId, idempotencyKey: req.idempotencyKey, ...pick(req) }, timeoutMs)
  }

  /** Holders of a VM's replica, as their adverts say (role replica), and the VM's id. */
  const replicaHolders = (ref: meshvirt.v1.IVmRef): { vmId: string, hosts: string[] } => {
    const matches = refMatcher(ref)
    let vmId = ''
    const hosts: string[] = []
    for (const h of deps.view.hosts()) {
      if (h.liveness === 'dead') continue
      const held = h.advert.vms.find((v) => v.role === 'replica' && matches(v))
      if (held === undefined) continue
      vmId = held.id
      hosts.push(h.hostId)
    }
    return { vmId, hosts }
  }

  const failover = async (f: meshvirt.v1.FailoverVm): Promise<meshvirt.v1.IControlResponse> => {
    const ref = f.vm ?? {}
    const what = (ref.id ?? '') !== '' ? ref.id as string : ref.name ?? ''
    if (what === '') throw new ControlError('INVALID_ARGUMENT', 'name a VM by id or name')
    const local = findLocal(ref)
    if (local !== undefined) throw new ControlError('WRONG_STATE', `${local.name} is owned by this host, which is alive: failover is only for a dead owner (use vm migrate to move it)`)
    const matches = refMatcher(ref)
    const owner = findGossipedVm(deps.view, matches)
    if (owner !== undefined) {
      const host = deps.view.get(owner.owner)
      throw new ControlError('WRONG_STATE', `${what} runs on ${host?.advert.hostname ?? owner.owner}, which is ${host?.liveness ?? 'alive'}: failover is only for a dead owner (use vm migrate to move it)`)
    }
    const { vmId, hosts } = replicaHolders(ref)
    if (hosts.length === 0) throw new ControlError('NOT_FOUND', `no live host owns ${what} or holds a replica of it (as far as this host has heard: see meshvirt vm ls)`)
    let target: string
    if ((f.toHost ?? '') !== '') {
      target = findHost(f.toHost)
      if (!hosts.includes(target)) throw new ControlError('INVALID_ARGUMENT', `${f.toHost} holds no replica of ${what} (holders: ${hosts.map((h) => deps.view.get(h)?.advert.hostname ?? h).join(', ')})`)
    } else {
      // The freshest replica wins; ties go to the lowest host id (every agent chooses the same).
      const held = await Promise.all(hosts.map(async (host) => {
        const res = await peers.negotiate(host, { queryReplica: { vmId } }).catch(() => undefined)
        const h = res?.replicaHolding
        return { host, epoch: Number(h?.epoch ?? 0), seq: Number(h?.seq ?? 0) }
      }))
      held.sort((a, b) => b.epoch - a.epoch || b.seq - a.seq || a.host.localeCompare(b.host))
      target = (held[0] as { host: string }).host
    }
    deps.log.warn('failing over a VM to a replica holder', { vm: vmId, peer: target })
    let res
    try {
      res = await peers.negotiate(target, { promoteReplica: { vmId, reason: 'vm failover' } }, PROMOTE_TIMEOUT_MS)
    } catch (err) {
      if ((err as ControlError).code !== 'LEASE_IN_CHARGE') throw err
      // Automatic failover is under way: wait for the group's election instead of racing it.
      const deadline = Date.now() + ELECTION_WAIT_MS
      for (;;) {
        const owner = findGossipedVm(deps.view, (v) => v.id === vmId)
        // Elected: answer once the guest runs there (as a promotion asked here does).
        if (owner !== undefined) return await untilRunning(owner.owner, vmId, Date.now() + PROMOTE_TIMEOUT_MS)
        if (Date.now() > deadline) {
          throw new ControlError('UNAVAILABLE', `${(err as Error).message}, and no holder was elected within ${ELECTION_WAIT_MS / 1000} s: a majority of the VM's replica group (owner, holders, witness) must be reachable`)
        }
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }
    const name = res.promoted?.name ?? ''
    if (name !== '') await rebindName(peers, deps.view, name, vmId, target)
    // The promoted VM starts once its lease at the new epoch is proven (a renewal round away); a
    // group whose majority stays unreachable leaves it fenced, which the answer then shows, with why.
    return await untilRunning(target, vmId, Date.now() + ELECTION_WAIT_MS)
  }

  /** The VM as its owner reports it once it runs, failed or crashed, or at the deadline. */
  const untilRunning = async (owner: string, vmId: string, deadline: number): Promise<meshvirt.v1.IControlResponse> => {
    const settled = new Set([pb.VmState.VM_STATE_RUNNING, pb.VmState.VM_STATE_FAILED, pb.VmState.VM_STATE_CRASHED])
    for (;;) {
      const info = await peers.control(owner, { hops: 1, inspectVm: { vm: { id: vmId } } })
      if (settled.has(info.vm?.summary?.state ?? pb.VmState.VM_STATE_UNSPECIFIED) || Date.now() > deadline) return info
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }

  return async (req) => {
    switch (req.body) {
      case 'replicateVm':
        return await onVm(req, req.replicateVm?.vm, async (vm) => {
          if (deps.replication === undefined) throw new ControlError('UNIMPLEMENTED', 'this host\'s hypervisor cannot replicate disks')
          const r = req.replicateVm as meshvirt.v1.ReplicateVm
          return { vm: vms.info(vms.setReplication(vm.id, { replicas: r.replicas, rpoMs: r.rpoMs, spreadBy: r.spreadBy })) }
        })
      case 'failoverVm':
        return await failover(req.failoverVm as meshvirt.v1.FailoverVm)
      case 'createVm': {
        const key = req.idempotencyKey !== '' ? req.idempotencyKey : req.requestId
        if (key === '') throw new ControlError('INVALID_ARGUMENT', 'create needs an idempotency key')
        const { vm } = await deps.broker.create(req.createVm?.spec ?? {}, key)
        return { vm }
      }
      case 'startVm':
        return await onVm(req, req.startVm?.vm, async (vm) => ({ vm: vms.info(await vms.start(vm.id)) }))
      case 'stopVm':
        return await onVm(req, req.stopVm?.vm, async (vm) => ({ vm: vms.info(await vms.stop(vm.id, req.stopVm?.force === true)) }))
      case 'migrateVm':
        return await onVm(req, req.migrateVm?.vm, async (vm) => {
          if (deps.migrations === undefined) throw new ControlError('UNIMPLEMENTED', 'this host\'s hypervisor cannot live-migrate')
          assertMigratable(vm)
          const m = req.migrateVm as meshvirt.v1.MigrateVm
          const { destination } = await deps.migrations.migrate(vm.id, resolveHost(m.toHost), m.params)
          return await peers.control(destination, { hops: 1, inspectVm: { vm: { id: vm.id } } })
        })
      case 'drainHost': {
        const d = req.drainHost as meshvirt.v1.DrainHost
        const target = findHost(d.host)
        if (target !== selfId) {
          if (req.hops > 0) throw new ControlError('NOT_FOUND', `host ${d.host} is not this host`)
          return await peers.control(target, { hops: 1, requestId: req.requestId, drainHost: d }, d.undrain ? undefined : DRAIN_FORWARD_TIMEOUT_MS)
        }
        if (d.undrain) {
          deps.admin.set('active')
          return { drainReport: { host: selfId, state: 'active', vms: [] } }
        }
        if (deps.migrations === undefined) throw new ControlError('UNIMPLEMENTED', 'this host\'s hypervisor cannot live-migrate, so it cannot be drained')
        const moved = await drainHost({ admin: deps.admin, vms, migrations: deps.migrations, log: deps.log }, { concurrency: d.concurrency, params: d.params })
        return { drainReport: { host: selfId, state: deps.admin.get(), vms: moved } }
      }
      case 'readConsole':
        return await onVm(req, req.readConsole?.vm, async (vm) => {
          const rc = req.readConsole as meshvirt.v1.ReadConsole
          const chunk = await vms.readConsole(vm.id, Number(rc.offset), rc.maxBytes)
          return { consoleChunk: { data: chunk.data, nextOffset: chunk.nextOffset, vmId: vm.id, state: vm.state } }
        })
      case 'inspectVm':
        return await onVm(req, req.inspectVm?.vm, async (vm) => ({ vm: vms.info(vm) }))
      case 'deleteVm':
        return await onVm(req, req.deleteVm?.vm, async (vm) => {
          const info = vms.info(vm)
          const replicas = deps.replication?.forget(vm)
          try {
            await vms.delete(vm.id)
          } catch (err) {
            replicas?.cancel()
            throw err
          }
          await replicas?.commit()
          // Free the name where it may be held: the authority, and its successor in case
          // membership moved since the claim (a release where nothing is held is a no-op).
          const authorities = claimHolders(vm.name, deps.view)
          await Promise.all(authorities.map(async (authority) => {
            await peers.negotiate(authority, { bindName: { name: vm.name, vmId: vm.id, release: true } }).catch((err: unknown) => {
              deps.log.warn('could not release the VM name at an authority', { vm: vm.id, authority, err: (err as Error).message })
            })
          }))
          await deps.onDeleted?.(vm)
          return { vm: info }
        })
      case 'listVms': {
        if (req.listVms?.localOnly === true) return { vmList: { vms: vms.list().map((v) => vms.info(v)) } }
        const lists = await listEverywhere()
        for (const l of lists) if (l.error !== undefined) deps.log.warn('host did not answer vm ls', { peer: l.host, err: l.error })
        const all = lists.flatMap((l) => l.vms).sort((a, b) => (a.summary?.name ?? '').localeCompare(b.summary?.name ?? ''))
        return { vmList: { vms: all } }
      }
      case 'listHosts':
        return {
          hostList: {
            selfId,
            hosts: deps.view.hosts().map((h) => ({ advert: hostAdvertToWire(h.advert), liveness: h.liveness, lastHeardMs: h.lastHeardMs }))
          }
        }
      case undefined:
        throw new ControlError('INVALID_ARGUMENT', 'empty control request: set one operation')
      default: {
        const extra = deps.extra?.[req.body]
        if (extra !== undefined) return await extra(req)
        throw new ControlError('UNIMPLEMENTED', `${String(req.body)} is not available in this version of the agent`)
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
    default: return {}
  }
}

/** Whether a VM (a summary, a row) is the one a reference names: by id when given, else by name. */
function refMatcher (ref: meshvirt.v1.IVmRef): (v: { id: string, name: string }) => boolean {
  return (v) => (ref.id ?? '') !== '' ? v.id === ref.id : v.name === ref.name
}
