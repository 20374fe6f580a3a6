import type { HostScorer } from '../host-scorer.js'
import { groupCount } from '../vm-groups.js'

/**
 * Spread a VM group over failure domains (`spreadBy`, e.g. zone), as Nomad's `spread` block does:
 * a host scores by how few of the group's VMs its domain already holds, against the most crowded
 * domain among the hosts being ranked. A host without the label cannot prove its domain and scores
 * 0. Applies only when the request names both a group and a spread key.
 */
export const domainSpreadScorer: HostScorer = {
  name: 'domain-spread',
  prepare: (request, hosts) => {
    const key = request.spreadBy
    const group = request.group
    if (key === undefined || key === '' || group === undefined || group === '') return undefined
    const perDomain = new Map<string, number>()
    for (const h of hosts) {
      if (!Object.hasOwn(h.labels, key)) continue
      const domain = h.labels[key] as string
      perDomain.set(domain, (perDomain.get(domain) ?? 0) + groupCount(h.vmGroups, group))
    }
    let most = 0
    for (const n of perDomain.values()) most = Math.max(most, n)
    return (host) => {
      if (!Object.hasOwn(host.labels, key)) return 0
      if (most === 0) return 1
      return (most - (perDomain.get(host.labels[key] as string) ?? 0)) / most
    }
  }
}
