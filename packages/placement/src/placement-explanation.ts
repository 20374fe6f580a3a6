import type { PlacementResult, ScoreComponent } from './placement-result.js'
import type { FilterCode } from './rejection.js'

/**
 * `PlacementExplanation` of proto/vm.proto with protobufjs's camelCase field names, so the agent
 * hands it to the codec as is.
 */
export interface PlacementExplanation {
  chosenHost: string
  totalScore: number
  scores: ScoreComponent[]
  rejected: Array<{ hostId: string, filter: FilterCode, reason: string }>
  candidates: number
  attempts: number
  summary: string
}

/**
 * The wire form of a decision. `chosenHost` may differ from the ranking's first (the broker falls
 * back along the ranking when a host refuses its Reserve); `attempts` counts those Reserves.
 */
export function toPlacementExplanation (result: PlacementResult, attempts = 1, chosenHost = result.chosen?.hostId): PlacementExplanation {
  const chosen = result.candidates.find((c) => c.hostId === chosenHost)
  return {
    chosenHost: chosen?.hostId ?? '',
    totalScore: chosen?.score ?? 0,
    scores: chosen?.scores ?? [],
    rejected: result.rejected.map((r) => ({ hostId: r.hostId, filter: r.filter, reason: r.reason })),
    candidates: result.candidates.length,
    attempts,
    summary: result.summary
  }
}
