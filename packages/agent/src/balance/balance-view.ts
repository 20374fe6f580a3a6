import type { HostEntry, VmSummary } from '@meshvirt/mesh'
import type { Accelerator, BalanceHost, BalanceVm } from '@meshvirt/placement'
import { notMigratableReason } from '../migrate/migratable.js'
import { placementRequestFor } from '../negotiate/placement-request.js'
import { toHostSnapshot } from '../negotiate/host-snapshot.js'
import type { VmRow } from '../store/state-store.js'
import type { VmUsage } from '@meshvirt/mesh'

/**
 * The cluster as the balancer sees it: every host of the view with the VMs its advert lists. This
 * host's own VMs come from its rows, with their full placement rules; other hosts' VMs carry what
 * gossip tells (size, group, usage, no-balance) — enough to measure them; only their owner moves
 * them, and it checks their full rules.
 */
export function balanceView (entries: readonly HostEntry[], selfId: string, own?: readonly BalanceVm[]): BalanceHost[] {
  return entries.map((e) => {
    const snapshot = toHostSnapshot(e)
    if (e.hostId === selfId && own !== undefined) return { snapshot, vms: own }
    return { snapshot, vms: e.advert.vms.filter((v) => v.role === 'owner').map((v) => gossipedVm(v, snapshot.accelerator)) }
  })
}

function gossipedVm (v: VmSummary, liveOn: Accelerator): BalanceVm {
  const pinned = v.noBalance === true ? 'created --no-balance' : v.state !== 'running' ? `it is ${v.state}` : undefined
  return {
    id: v.id,
    name: v.name,
    request: { resources: v.resources, ...(v.group !== '' ? { group: v.group } : {}), liveOn },
    ...(v.usage !== undefined ? { usage: v.usage } : {}),
    ...(pinned !== undefined ? { pinned } : {})
  }
}

/** One VM this host owns, as the balancer may move it: its spec's placement rules, its measured usage. */
export function ownVm (row: VmRow, liveOn: Accelerator, usage: VmUsage | undefined): BalanceVm {
  const spec = row.spec
  const { host: _pinnedAtCreate, seed: _seed, ...request } = placementRequestFor(spec, row.id)
  const pinned = spec.noBalance
    ? 'created --no-balance'
    : notMigratableReason(row) ?? (row.state !== 'running' ? `it is ${row.state} (only running VMs move live)` : undefined)
  return {
    id: row.id,
    name: row.name,
    request: { ...request, liveOn },
    ...(usage !== undefined ? { usage } : {}),
    ...(pinned !== undefined ? { pinned } : {})
  }
}
