import { assumePlaced } from './assume-placed.js'
import { BATCH_PROBES_PER_VM, SAMPLE_ABOVE_HOSTS, SAMPLE_HOSTS_PER_VM } from './constants.js'
import type { HostSnapshot } from './host-snapshot.js'
import type { PlacementOptions } from './place-vm.js'
import { toPlacementResult } from './place-vm.js'
import type { PlacementRequest } from './placement-request.js'
import type { PlacementResult } from './placement-result.js'
import { rankHosts } from './rank-hosts.js'
import { sampleHosts } from './sample-hosts.js'
import { seededRandom } from './seeded-random.js'

/**
 * Places m VMs at once, each seeing the ones before it (via `assumePlaced`). Above `sampleAbove`
 * hosts it draws one shared pool (Sparrow's batch sampling) of `sampleSize` + 4·m hosts instead
 * of `sampleSize` per VM: the VMs of a batch share the best of a larger pool while the cost per VM
 * stays near one sampled decision. A VM the pool cannot hold gets a full scan. The pool is drawn
 * from the first request's seed.
 */
export function placeBatch (requests: readonly PlacementRequest[], view: readonly HostSnapshot[], options: PlacementOptions = {}): PlacementResult[] {
  const first = requests[0]
  if (first === undefined) return []
  const sampleAbove = options.sampleAbove ?? SAMPLE_ABOVE_HOSTS
  const poolSize = (options.sampleSize ?? SAMPLE_HOSTS_PER_VM) + BATCH_PROBES_PER_VM * requests.length
  const sampling = view.length > sampleAbove && poolSize < view.length
  const pool = sampling ? sampleHosts(view, poolSize, seededRandom(first.seed)) : [...view]
  const placed = new Map<string, HostSnapshot>()
  const current = (h: HostSnapshot): HostSnapshot => placed.get(h.id) ?? h

  const results: PlacementResult[] = []
  for (const request of requests) {
    let result = toPlacementResult(rankHosts(request, pool.map(current), options), view.length, sampling)
    if (result.chosen === undefined && sampling) {
      result = toPlacementResult(rankHosts(request, view.map(current), options), view.length, false)
    }
    if (result.chosen !== undefined) placed.set(result.chosen.hostId, assumePlaced(current(result.chosen.host), request))
    results.push(result)
  }
  return results
}
