import type { ClusterView } from '@meshvirt/mesh'
import { pb, type meshvirt } from '@meshvirt/proto'
import type { Logger } from '../log/logger.js'
import { findGossipedVm } from '../negotiate/gossiped-vm.js'
import { rebindName } from '../negotiate/name-authority.js'
import type { PeerClient } from '../negotiate/peer-client.js'
import type { VmRow } from '../store/state-store.js'
import { refMatcher, refText, type VmRef } from './control-action.js'
import { ControlError } from './errors.js'
import { compareText } from '../util/compare-text.js'

/** A promotion creates the VM from its replica and starts QEMU. */
const PROMOTE_TIMEOUT_MS = 3 * 60_000
/** How long `vm failover` waits for the replica group's own election when the lease decides. */
export const ELECTION_WAIT_MS = 30_000

export interface FailoverContext {
  view: ClusterView
  peers: PeerClient
  log: Logger
  /** The VM when this host owns it (then it is alive, and failover is refused). */
  findLocal: (ref: VmRef) => VmRow | undefined
  /** A host named by id or hostname. */
  findHost: (name: string) => string
}

/**
 * `vm failover`: a VM whose owner is dead is promoted on a holder of its replica — the one asked
 * for, or the freshest (ties to the lowest host id, so every agent picks the same). Refused while
 * the owner lives. When the replica group's lease already decides, waits for its election instead.
 */
export async function failover (ref: VmRef, toHost: string, ctx: FailoverContext): Promise<meshvirt.v1.IControlResponse> {
  const { view, peers } = ctx
  const what = refText(ref)
  const local = ctx.findLocal(ref)
  if (local !== undefined) throw new ControlError('WRONG_STATE', `${local.name} is owned by this host, which is alive: failover is only for a dead owner (use vm migrate to move it)`)
  const matches = refMatcher(ref)
  const owner = findGossipedVm(view, matches)
  if (owner !== undefined) {
    const host = view.get(owner.owner)
    throw new ControlError('WRONG_STATE', `${what} runs on ${host?.advert.hostname ?? owner.owner}, which is ${host?.liveness ?? 'alive'}: failover is only for a dead owner (use vm migrate to move it)`)
  }
  const { vmId, hosts } = replicaHolders(view, matches)
  if (hosts.length === 0) throw new ControlError('NOT_FOUND', `no live host owns ${what} or holds a replica of it (as far as this host has heard: see meshvirt vm ls)`)
  let target: string
  if (toHost !== '') {
    target = ctx.findHost(toHost)
    if (!hosts.includes(target)) throw new ControlError('INVALID_ARGUMENT', `${toHost} holds no replica of ${what} (holders: ${hosts.map((h) => view.get(h)?.advert.hostname ?? h).join(', ')})`)
  } else {
    const held = await Promise.all(hosts.map(async (host) => {
      const res = await peers.negotiate(host, { queryReplica: { vmId } }).catch(() => undefined)
      const h = res?.replicaHolding
      return { host, epoch: Number(h?.epoch ?? 0), seq: Number(h?.seq ?? 0) }
    }))
    held.sort((a, b) => b.epoch - a.epoch || b.seq - a.seq || compareText(a.host, b.host))
    target = (held[0] as { host: string }).host
  }
  ctx.log.warn('failing over a VM to a replica holder', { vm: vmId, peer: target })
  let res
  try {
    res = await peers.negotiate(target, { promoteReplica: { vmId, reason: 'vm failover' } }, PROMOTE_TIMEOUT_MS)
  } catch (err) {
    if ((err as ControlError).code !== 'LEASE_IN_CHARGE') throw err
    // Automatic failover is under way: wait for the group's election instead of racing it.
    const deadline = Date.now() + ELECTION_WAIT_MS
    for (;;) {
      const elected = findGossipedVm(view, (v) => v.id === vmId)
      // Elected: answer once the guest runs there (as a promotion asked here does).
      if (elected !== undefined) return await untilRunning(peers, elected.owner, vmId, Date.now() + PROMOTE_TIMEOUT_MS)
      if (Date.now() > deadline) {
        throw new ControlError('UNAVAILABLE', `${(err as Error).message}, and no holder was elected within ${ELECTION_WAIT_MS / 1000} s: a majority of the VM's replica group (owner, holders, witness) must be reachable`)
      }
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
  const name = res.promoted?.name ?? ''
  if (name !== '') await rebindName(peers, view, name, vmId, target)
  // The promoted VM starts once its lease at the new epoch is proven (a renewal round away); a
  // group whose majority stays unreachable leaves it fenced, which the answer then shows, with why.
  return await untilRunning(peers, target, vmId, Date.now() + ELECTION_WAIT_MS)
}

/** Holders of a VM's replica, as their adverts say (role replica), and the VM's id. */
function replicaHolders (view: ClusterView, matches: (v: { id: string, name: string }) => boolean): { vmId: string, hosts: string[] } {
  let vmId = ''
  const hosts: string[] = []
  for (const h of view.hosts()) {
    if (h.liveness === 'dead') continue
    const held = h.advert.vms.find((v) => v.role === 'replica' && matches(v))
    if (held === undefined) continue
    vmId = held.id
    hosts.push(h.hostId)
  }
  return { vmId, hosts }
}

/** The VM as its owner reports it once it runs, failed or crashed, or at the deadline. */
async function untilRunning (peers: PeerClient, owner: string, vmId: string, deadline: number): Promise<meshvirt.v1.IControlResponse> {
  const settled = new Set([pb.VmState.VM_STATE_RUNNING, pb.VmState.VM_STATE_FAILED, pb.VmState.VM_STATE_CRASHED])
  for (;;) {
    const info = await peers.control(owner, { hops: 1, inspectVm: { vm: { id: vmId } } })
    if (settled.has(info.vm?.summary?.state ?? pb.VmState.VM_STATE_UNSPECIFIED) || Date.now() > deadline) return info
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}
