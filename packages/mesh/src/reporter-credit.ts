/**
 * Whose suspicion notices about one host still count on their own (issue 22, finding 5: one host
 * flooding notices kept a live host "suspect" 97 % of the time). A reporter whose suspicion the
 * host refuted (it was heard again: a newer advert, or a probe answer) is *discredited* about that
 * host for a while: its notices alone no longer make the host suspect; the notices of two distinct
 * discredited reporters within a window still do (independent confirmations), and any reporter
 * not discredited, and this host's own missed heartbeats, still do at once. So a real failure is
 * still seen as fast as before, while a flooder gets one short suspicion per hold period.
 *
 * State is bounded: at most `maxReporters` entries of each kind per host, the oldest dropped, and
 * entries expire. Pure: the clock comes in as arguments.
 */

/** How long a refuted reporter's notices about the host stop counting alone. */
export const DEFAULT_REFUTED_HOLD_MS = 60_000
/** Notices of discredited reporters confirm one another within this window. */
export const DEFAULT_CONFIRM_WINDOW_MS = 10_000
/** Reporters remembered per host (discredited, or pending a confirmation). */
export const MAX_TRACKED_REPORTERS = 64
/** Distinct discredited reporters that together make a host suspect. */
export const INDEPENDENT_CONFIRMATIONS = 2

export interface ReporterCreditInit {
  holdMs?: number
  windowMs?: number
  maxReporters?: number
}

export class ReporterCredit {
  private readonly holdMs: number
  private readonly windowMs: number
  private readonly max: number
  /** reporter → until when its notices do not count alone. */
  private readonly discredited = new Map<string, number>()
  /** discredited reporter → when it last reported (pending a second, independent reporter). */
  private readonly pending = new Map<string, number>()

  constructor (init: ReporterCreditInit = {}) {
    this.holdMs = init.holdMs ?? DEFAULT_REFUTED_HOLD_MS
    this.windowMs = init.windowMs ?? DEFAULT_CONFIRM_WINDOW_MS
    this.max = init.maxReporters ?? MAX_TRACKED_REPORTERS
  }

  /** The host refuted a suspicion these reporters raised. */
  refuted (reporters: Iterable<string>, now: number): void {
    for (const r of reporters) put(this.discredited, r, now + this.holdMs, this.max)
    this.pending.clear()
  }

  /**
   * A notice by `reporter` about the (alive) host: does it make the host suspect? Yes when the
   * reporter is not discredited, or when it is the second distinct discredited reporter in the window.
   */
  suspects (reporter: string, now: number): boolean {
    const until = this.discredited.get(reporter)
    if (until === undefined || until <= now) {
      this.discredited.delete(reporter)
      return true
    }
    for (const [r, at] of this.pending) if (at + this.windowMs <= now) this.pending.delete(r)
    put(this.pending, reporter, now, this.max)
    if (this.pending.size < INDEPENDENT_CONFIRMATIONS) return false
    this.pending.clear()
    return true
  }

  /** Entries held (for tests of the bound). */
  size (): number {
    return this.discredited.size + this.pending.size
  }
}

function put (map: Map<string, number>, key: string, value: number, max: number): void {
  map.delete(key)
  if (map.size >= max) map.delete(map.keys().next().value as string)
  map.set(key, value)
}
