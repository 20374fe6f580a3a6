import type { HostFilter } from '../host-filter.js'
import type { HostSnapshot } from '../host-snapshot.js'
import type { Rejection } from '../rejection.js'
import { groupCount } from '../vm-groups.js'

type Groups = Readonly<Record<string, number>>

/**
 * The groups each host's *scope* runs: the host's own VMs, or with `affinityDomain` (e.g. zone) the VMs
 * of every host in the view that shares its label value — affinity and anti-affinity are then by
 * failure domain, not by host. `undefined` for a host without the label: it cannot prove its
 * domain, so domain-scoped rules reject it.
 */
function scopeOf (key: string | undefined, view: readonly HostSnapshot[] | undefined): (host: HostSnapshot) => Groups | undefined {
  if (key === undefined || key === '') return (host) => host.vmGroups
  const perDomain = new Map<string, Record<string, number>>()
  for (const h of view ?? []) {
    if (!Object.hasOwn(h.labels, key)) continue
    const domain = h.labels[key] as string
    const sum = perDomain.get(domain) ?? Object.create(null) as Record<string, number>
    for (const g of Object.keys(h.vmGroups)) sum[g] = (sum[g] ?? 0) + groupCount(h.vmGroups, g)
    perDomain.set(domain, sum)
  }
  return (host) => {
    if (!Object.hasOwn(host.labels, key)) return undefined
    // A host missing from `view` (not passed one) still counts its own VMs.
    return perDomain.get(host.labels[key] as string) ?? host.vmGroups
  }
}

function runs (groups: Groups, group: string): boolean {
  return groupCount(groups, group) > 0
}

function noDomain (host: HostSnapshot, key: string): Rejection {
  return { hostId: host.id, filter: 'FAILURE_DOMAIN', reason: `has no ${key} label (the VM's affinity rules are by ${key})`, detail: key }
}

/** Hard affinity: the host (or its `affinityDomain` domain) must already run a VM of every listed group. */
export const affinityFilter: HostFilter = (request, view) => {
  const wanted = request.affinity ?? []
  if (wanted.length === 0) return undefined
  const scope = scopeOf(request.affinityDomain, view)
  const where = request.affinityDomain !== undefined && request.affinityDomain !== '' ? `its ${request.affinityDomain}` : 'it'
  return (host) => {
    const groups = scope(host)
    if (groups === undefined) return noDomain(host, request.affinityDomain as string)
    const missing = wanted.find((g) => !runs(groups, g))
    return missing === undefined
      ? undefined
      : { hostId: host.id, filter: 'AFFINITY', reason: `${where} runs no VM of group ${missing}`, detail: missing }
  }
}

/** Hard anti-affinity: the host (or its `affinityDomain` domain) must run no VM of any listed group. */
export const antiAffinityFilter: HostFilter = (request, view) => {
  const avoided = request.antiAffinity ?? []
  if (avoided.length === 0) return undefined
  const scope = scopeOf(request.affinityDomain, view)
  const where = request.affinityDomain !== undefined && request.affinityDomain !== '' ? `its ${request.affinityDomain}` : 'it'
  return (host) => {
    const groups = scope(host)
    if (groups === undefined) return noDomain(host, request.affinityDomain as string)
    const present = avoided.find((g) => runs(groups, g))
    return present === undefined
      ? undefined
      : { hostId: host.id, filter: 'ANTI_AFFINITY', reason: `${where} already runs a VM of group ${present}`, detail: present }
  }
}
