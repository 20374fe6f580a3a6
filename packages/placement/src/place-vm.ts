import { SAMPLE_ABOVE_HOSTS, SAMPLE_HOSTS_PER_VM } from './constants.js'
import type { HostSnapshot } from './host-snapshot.js'
import type { PlacementRequest } from './placement-request.js'
import type { PlacementResult } from './placement-result.js'
import { rankHosts, type RankedHosts, type RankOptions } from './rank-hosts.js'
import { sampleHosts } from './sample-hosts.js'
import { seededRandom } from './seeded-random.js'
import { summarizeRejections } from './summarize-rejections.js'

export interface PlacementOptions extends RankOptions {
  /** Sample instead of scanning when the view holds more hosts than this (default 1,000; Infinity: always scan). */
  sampleAbove?: number
  /** Hosts probed per VM when sampling (default 64). */
  sampleSize?: number
}

/** Wraps a ranking into the answer a broker reports. */
export function toPlacementResult (ranked: RankedHosts, viewSize: number, sampled: boolean): PlacementResult {
  const chosen = ranked.candidates[0]
  const examined = ranked.candidates.length + ranked.rejected.length
  let summary = summarizeRejections(ranked.rejected, ranked.candidates.length)
  if (chosen !== undefined) summary = `chose ${chosen.host.hostname ?? chosen.hostId} (score ${chosen.score.toFixed(3)}); ${summary}`
  if (sampled) summary += ` (sampled ${examined} of ${viewSize} hosts)`
  return { chosen, candidates: ranked.candidates, rejected: ranked.rejected, examined, unexamined: viewSize - examined, sampled, summary }
}

/**
 * Where should one VM go? Filters and ranks the view; above `sampleAbove` hosts it ranks a seeded
 * sample of `sampleSize` instead (power of d choices), so the cost stays flat as the view grows.
 * A sample with no feasible host falls back to a full scan: hard constraints can leave few
 * feasible hosts, and "no host fits" must only ever be said after looking at all of them.
 */
export function placeVm (request: PlacementRequest, view: readonly HostSnapshot[], options: PlacementOptions = {}): PlacementResult {
  const sampleAbove = options.sampleAbove ?? SAMPLE_ABOVE_HOSTS
  const sampleSize = options.sampleSize ?? SAMPLE_HOSTS_PER_VM
  if (view.length > sampleAbove && sampleSize < view.length) {
    const sample = sampleHosts(view, sampleSize, seededRandom(request.seed))
    const ranked = rankHosts(request, sample, { ...options, view })
    if (ranked.candidates.length > 0) return toPlacementResult(ranked, view.length, true)
  }
  return toPlacementResult(rankHosts(request, view, options), view.length, false)
}
