import type { HostFilter } from '../host-filter.js'
import { groupCount } from '../vm-groups.js'

function runs (groups: Readonly<Record<string, number>>, group: string): boolean {
  return groupCount(groups, group) > 0
}

/** Hard affinity: the host must already run a VM of every listed group. */
export const affinityFilter: HostFilter = (request) => {
  const wanted = request.affinity ?? []
  if (wanted.length === 0) return undefined
  return (host) => {
    const missing = wanted.find((g) => !runs(host.vmGroups, g))
    return missing === undefined
      ? undefined
      : { hostId: host.id, filter: 'AFFINITY', reason: `runs no VM of group ${missing}`, detail: missing }
  }
}

/** Hard anti-affinity: the host must run no VM of any listed group (e.g. a group's own members apart). */
export const antiAffinityFilter: HostFilter = (request) => {
  const avoided = request.antiAffinity ?? []
  if (avoided.length === 0) return undefined
  return (host) => {
    const present = avoided.find((g) => runs(host.vmGroups, g))
    return present === undefined
      ? undefined
      : { hostId: host.id, filter: 'ANTI_AFFINITY', reason: `already runs a VM of group ${present}`, detail: present }
  }
}
