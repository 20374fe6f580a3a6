import type { HostSnapshot } from './host-snapshot.js'
import type { Rejection } from './rejection.js'
import type { Resources } from './resources.js'

/** `PlacementExplanation.Score` of proto/vm.proto. */
export interface ScoreComponent {
  scorer: string
  /** 0..1, higher is better. */
  value: number
  weight: number
}

/** A host that passed every filter, with how it scored. */
export interface RankedCandidate {
  hostId: string
  host: HostSnapshot
  /** Weighted mean of `scores`, 0..1. */
  score: number
  scores: ScoreComponent[]
  /** Free capacity before this VM, as the view had it. */
  free: Resources
}

/** Ranked candidates (best first) and every examined host that was rejected, with why. */
export interface PlacementResult {
  /** The best candidate; undefined when no host fits. */
  chosen?: RankedCandidate
  candidates: RankedCandidate[]
  rejected: Rejection[]
  /** Hosts filtered and, if feasible, scored. */
  examined: number
  /** Hosts of the view a sampled decision never looked at (0 after a full scan). */
  unexamined: number
  sampled: boolean
  /** One line for an operator: "chose h3 …" or "no host fits: …". */
  summary: string
}
