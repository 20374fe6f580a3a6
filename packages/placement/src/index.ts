/**
 * @packageDocumentation
 *
 * Placement: which host should run this VM? Pure functions over a snapshot of one agent's view —
 * filters (each naming why it dropped a host), scorers, ranking, replica sets in distinct failure
 * domains, sampling for large views, the free-capacity arithmetic the ledger shares, and the CPU
 * baseline of a group of hosts. No I/O, no clock; randomness only from the request's seed.
 *
 * @example
 * ```ts
 * import { GIB, placeVm, toPlacementExplanation } from '@meshvirt/placement'
 * const result = placeVm({ resources: { vcpus: 2, memoryBytes: 4 * GIB, diskBytes: 0 }, seed: idempotencyKey }, view)
 * if (result.chosen === undefined) throw new NoCapacityError(result.summary) // "no host fits: 3 lack memory (…)"
 * // else Reserve on result.chosen, then result.candidates[1], … ; explain with toPlacementExplanation(result, attempts)
 * ```
 */
export type { Resources } from './resources.js'
export { NO_RESOURCES, MIB, GIB, addResources, subtractResources, fitsWithin } from './resources.js'
export type { HostSnapshot, HostCapacity, HostLoad, HostLiveness, HostAdminState, Accelerator, Overcommit } from './host-snapshot.js'
export { allocatableAmount, allocatableCapacity, freeCapacity, freeWithin } from './free-capacity.js'
export type { PlacementRequest, PlacementPolicy, LabelConstraint } from './placement-request.js'
export type { FilterCode, Rejection } from './rejection.js'
export type { PlacementResult, RankedCandidate, ScoreComponent } from './placement-result.js'
export type { HostFilter, HostCheck } from './host-filter.js'
export type { HostScorer, HostScore } from './host-scorer.js'
export { FILTER_CHAIN, prepareFilters } from './filters/filter-chain.js'
export { formatConstraint, labelMatches } from './filters/labels.js'
export { POLICY_WEIGHTS, SAMPLE_ABOVE_HOSTS, SAMPLE_HOSTS_PER_VM, type ScoreWeights } from './constants.js'
export { rankHosts, SCORERS, type RankOptions, type RankedHosts } from './rank-hosts.js'
export { placeVm, toPlacementResult, type PlacementOptions } from './place-vm.js'
export { placeBatch } from './place-batch.js'
export { placeReplicaSet, type ReplicaSetResult } from './place-replica-set.js'
export { assumePlaced, assumeRemoved } from './assume-placed.js'
export { summarizeRejections } from './summarize-rejections.js'
export { toPlacementExplanation, type PlacementExplanation } from './placement-explanation.js'
export { CPU_MODELS, findCpuModel, missingCpuFlags, type CpuModel } from './cpu-models.js'
export { cpuBaseline } from './cpu-baseline.js'
export { seededRandom } from './seeded-random.js'
export * from './balance/index.js'
