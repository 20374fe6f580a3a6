import { acceleratorFilter } from './accelerator.js'
import { affinityFilter, antiAffinityFilter } from './affinity.js'
import { capacityFilter } from './capacity.js'
import { cpuModelFilter } from './cpu-model.js'
import { exclusionFilter } from './exclusion.js'
import { hostStateFilter } from './host-state.js'
import { labelFilter } from './labels.js'
import type { HostCheck, HostFilter } from '../host-filter.js'
import type { HostSnapshot } from '../host-snapshot.js'
import type { PlacementRequest } from '../placement-request.js'

/**
 * Cheapest and most common reasons first, so a host is rejected for the reason an operator would
 * name: a dead host is "dead", not "lacks memory". The first failing filter is the one reported.
 */
export const FILTER_CHAIN: readonly HostFilter[] = [
  hostStateFilter,
  capacityFilter,
  acceleratorFilter,
  labelFilter,
  affinityFilter,
  antiAffinityFilter,
  cpuModelFilter,
  exclusionFilter
]

/** The checks this request needs, in chain order. */
export function prepareFilters (request: PlacementRequest, chain: readonly HostFilter[] = FILTER_CHAIN, view?: readonly HostSnapshot[]): HostCheck[] {
  const checks: HostCheck[] = []
  for (const filter of chain) {
    const check = filter(request, view)
    if (check !== undefined) checks.push(check)
  }
  return checks
}
