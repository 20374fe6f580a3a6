import type { HostSnapshot } from './host-snapshot.js'
import type { PlacementRequest } from './placement-request.js'
import type { Rejection } from './rejection.js'
import type { Resources } from './resources.js'

/** One host, its free capacity (computed once per host by the ranker) → why it cannot take the VM. */
export type HostCheck = (host: HostSnapshot, free: Resources) => Rejection | undefined

/**
 * A feasibility filter, prepared once per request (as Nomad's feasibility checkers are). Returns
 * undefined when the request asks nothing of it, so the chain skips it entirely. `view` is every
 * host the broker knows (not only those being ranked), for rules over failure domains.
 */
export type HostFilter = (request: PlacementRequest, view?: readonly HostSnapshot[]) => HostCheck | undefined
