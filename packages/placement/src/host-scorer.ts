import type { HostSnapshot } from './host-snapshot.js'
import type { PlacementRequest } from './placement-request.js'
import type { Resources } from './resources.js'

/** Scores one feasible host in [0, 1], higher is better. */
export type HostScore = (host: HostSnapshot, free: Resources, allocatable: Resources) => number

/**
 * A ranker, prepared once per request over the hosts being ranked (the whole view, or the sample).
 * Returns undefined when it has nothing to say about this request (e.g. soft affinity without soft
 * rules), so it neither costs time nor dilutes the others.
 */
export interface HostScorer {
  name: string
  prepare: (request: PlacementRequest, hosts: readonly HostSnapshot[]) => HostScore | undefined
}
