import type { HostScorer } from '../host-scorer.js'
import { groupCount } from '../vm-groups.js'

/**
 * Share of soft rules a host satisfies: a listed soft-affinity group it runs, or a listed
 * soft-anti-affinity group it does not. 1 when all hold, 0 when none does.
 */
export const softAffinityScorer: HostScorer = {
  name: 'soft-affinity',
  prepare: (request) => {
    const near = request.softAffinity ?? []
    const far = request.softAntiAffinity ?? []
    const rules = near.length + far.length
    if (rules === 0) return undefined
    return (host) => {
      let held = 0
      for (const g of near) if (groupCount(host.vmGroups, g) > 0) held++
      for (const g of far) if (groupCount(host.vmGroups, g) === 0) held++
      return held / rules
    }
  }
}
