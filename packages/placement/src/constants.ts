import type { PlacementPolicy } from './placement-request.js'

/** Scorer name → weight, per policy. A scorer that does not apply to a request drops out of the sum. */
export type ScoreWeights = Readonly<Record<string, number>>

/**
 * The policy's own scorer dominates; measured load nudges between near-equal hosts; soft rules
 * weigh as much as the policy because an operator wrote them for this VM. Spreading a group over
 * failure domains (`spreadBy`) belongs to the spread policy: under binpack it would fight the
 * packing, and replica sets get their distinct domains from `placeReplicaSet` anyway. Image
 * locality weighs a quarter of the policy: between hosts the policy rates about equal, one holding
 * the VM's image wins; a clearly better fit still wins (a fetch costs seconds once, a poor fit lasts).
 */
export const POLICY_WEIGHTS: Readonly<Record<PlacementPolicy, ScoreWeights>> = {
  binpack: { binpack: 1, 'least-loaded': 0.1, 'soft-affinity': 1, 'image-locality': 0.25 },
  spread: { spread: 1, 'domain-spread': 1, 'least-loaded': 0.25, 'soft-affinity': 1, 'image-locality': 0.25 }
}

/**
 * Above this many hosts a decision samples instead of scanning the view (docs/design.md, "Place"). A
 * full scan of 1,000 hosts already fits in the 1 ms budget, so sampling starts where it pays.
 */
export const SAMPLE_ABOVE_HOSTS = 1000

/**
 * Hosts probed per VM when sampling. Sparrow's d = 2 balances load; packing and hard constraints
 * need a wider look to find a tight or feasible fit, and the cost stays flat in N either way.
 */
export const SAMPLE_HOSTS_PER_VM = 64

/**
 * Extra hosts a batch's shared pool holds per VM (Sparrow's probe ratio; its experiments use 2).
 * Each VM of a batch ranks the whole pool, so the pool grows by a few hosts per VM, not by
 * `SAMPLE_HOSTS_PER_VM`: a pool of 64 per VM made a batch of 16 cost as much per VM as a full scan
 * of 1,000 hosts (measured 840 µs/VM in bench/placement-quality).
 */
export const BATCH_PROBES_PER_VM = 4

/** Scores are compared after rounding to this many steps, so float noise never beats the seeded tie order. */
export const SCORE_RESOLUTION = 1e9
