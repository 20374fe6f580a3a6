import type { VmSummary } from '@meshvirt/mesh'
import { memberIndex } from './group-names.js'
import type { ObservedMember } from './reconcile-decision.js'
import { compareText } from '../util/compare-text.js'

/** A host as the members' sighting needs it (the cluster view's entries). */
export interface SeenHost {
  hostId: string
  liveness: string
  advert: { hostname: string, vms: readonly VmSummary[] }
}

/** One member of a group as the cluster's gossip shows it. */
export interface MemberSighting {
  index: number
  vmId: string
  vmName: string
  /**
   * The owner's word on the VM (running, stopped, deleting, …); `recovering`: its owner is dead and
   * a live host holds a replica (failover brings it back); `lost`: its owner is dead and nothing can.
   */
  state: string
  hostId: string
  hostname: string
}

/**
 * The members of group `group` as the gossiped VM summaries show them: VMs of the placement group
 * `group` named `group-N`. A VM seen owned by two live hosts (a migration's hand-over) is counted
 * once, at the higher epoch. Pure.
 */
export function sightMembers (group: string, hosts: readonly SeenHost[]): MemberSighting[] {
  const owned = new Map<string, { vm: VmSummary, host: SeenHost }>()
  const dead = new Map<string, { vm: VmSummary, host: SeenHost }>()
  const replicated = new Set<string>()
  for (const host of hosts) {
    const alive = host.liveness !== 'dead'
    for (const vm of host.advert.vms) {
      if (vm.role === 'replica') {
        if (alive) replicated.add(vm.id)
        continue
      }
      if (vm.group !== group || memberIndex(group, vm.name) === undefined) continue
      const into = alive ? owned : dead
      const seen = into.get(vm.id)
      if (seen === undefined || vm.epoch > seen.vm.epoch) into.set(vm.id, { vm, host })
    }
  }
  const out: MemberSighting[] = []
  const sighting = (vm: VmSummary, host: SeenHost, state: string): MemberSighting => ({
    index: memberIndex(group, vm.name) as number, vmId: vm.id, vmName: vm.name, state, hostId: host.hostId, hostname: host.advert.hostname
  })
  for (const { vm, host } of owned.values()) out.push(sighting(vm, host, vm.state))
  // A dead host's copy of a member that runs again elsewhere (re-created under its name) is history.
  const standing = new Set(out.map((m) => m.index))
  for (const [id, { vm, host }] of dead) {
    if (owned.has(id) || standing.has(memberIndex(group, vm.name) as number)) continue
    out.push(sighting(vm, host, replicated.has(id) ? 'recovering' : 'lost'))
  }
  return out.sort((a, b) => a.index - b.index || compareText(a.vmId, b.vmId))
}

/** What the reconciler counts of a sighting: a member being deleted counts for nothing, a lost one must be replaced. */
export function observed (s: MemberSighting): ObservedMember {
  return { index: s.index, state: s.state === 'lost' ? 'lost' : s.state === 'deleting' ? 'deleting' : 'present' }
}
