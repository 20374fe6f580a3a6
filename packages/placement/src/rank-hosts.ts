import { POLICY_WEIGHTS, SCORE_RESOLUTION, type ScoreWeights } from './constants.js'
import { prepareFilters } from './filters/filter-chain.js'
import { allocatableCapacity, freeWithin } from './free-capacity.js'
import type { HostScore } from './host-scorer.js'
import type { HostSnapshot } from './host-snapshot.js'
import type { PlacementRequest } from './placement-request.js'
import type { RankedCandidate, ScoreComponent } from './placement-result.js'
import type { Rejection } from './rejection.js'
import { binpackScorer } from './scorers/binpack.js'
import { domainSpreadScorer } from './scorers/domain-spread.js'
import { imageLocalityScorer } from './scorers/image-locality.js'
import { leastLoadedScorer } from './scorers/least-loaded.js'
import { softAffinityScorer } from './scorers/soft-affinity.js'
import { spreadScorer } from './scorers/spread.js'
import { seedToInt, tieBreakKey } from './seeded-random.js'

export const SCORERS = [binpackScorer, spreadScorer, domainSpreadScorer, leastLoadedScorer, softAffinityScorer, imageLocalityScorer]

export interface RankOptions {
  /** Scorer name → weight; default: the request policy's `POLICY_WEIGHTS`. */
  weights?: ScoreWeights
  /** Every host the broker knows, when `hosts` is a sample of it (domain-scoped affinity counts over it). */
  view?: readonly HostSnapshot[]
}

export interface RankedHosts {
  candidates: RankedCandidate[]
  rejected: Rejection[]
}

interface Keyed { candidate: RankedCandidate, key: number, tie: number }

/** A scorer fed a malformed advert must not yield NaN: NaN would make the sort order arbitrary. */
function clampScore (v: number): number {
  return Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0
}

/**
 * Filters then scores `hosts` for one request: every host ends up either ranked or rejected with
 * a reason. Ties are broken by a per-host key hashed from the seed, so the answer depends on the
 * seed and the hosts, not on the order the view happens to list them in.
 */
export function rankHosts (request: PlacementRequest, hosts: readonly HostSnapshot[], options: RankOptions = {}): RankedHosts {
  const checks = prepareFilters(request, undefined, options.view ?? hosts)
  const weights = options.weights ?? POLICY_WEIGHTS[request.policy ?? 'binpack']
  const scorers: Array<{ name: string, weight: number, score: HostScore }> = []
  for (const scorer of SCORERS) {
    const weight = weights[scorer.name] ?? 0
    if (weight <= 0) continue
    const score = scorer.prepare(request, hosts)
    if (score !== undefined) scorers.push({ name: scorer.name, weight, score })
  }
  const weightSum = scorers.reduce((sum, s) => sum + s.weight, 0)
  const seedInt = seedToInt(request.seed)

  const rejected: Rejection[] = []
  const keyed: Keyed[] = []
  for (const host of hosts) {
    const limit = allocatableCapacity(host.capacity)
    const free = freeWithin(limit, host.capacity)
    let rejection: Rejection | undefined
    for (const check of checks) {
      rejection = check(host, free)
      if (rejection !== undefined) break
    }
    if (rejection !== undefined) {
      rejected.push(rejection)
      continue
    }
    const scores: ScoreComponent[] = []
    let total = 0
    for (const s of scorers) {
      const value = clampScore(s.score(host, free, limit))
      scores.push({ scorer: s.name, value, weight: s.weight })
      total += value * s.weight
    }
    const score = weightSum > 0 ? total / weightSum : 0
    keyed.push({
      candidate: { hostId: host.id, host, score, scores, free },
      key: Math.round(score * SCORE_RESOLUTION),
      tie: tieBreakKey(seedInt, host.id)
    })
  }
  keyed.sort((a, b) => b.key - a.key || a.tie - b.tie || (a.candidate.hostId < b.candidate.hostId ? -1 : a.candidate.hostId > b.candidate.hostId ? 1 : 0))
  return { candidates: keyed.map((k) => k.candidate), rejected }
}
