/** What a host's balance loop does this round. */
export type GovernorStep =
  | 'idle' // not above the threshold
  | 'holding' // above it, not for long enough
  | 'cooling' // a move finished a short while ago
  | 'busy' // a move of this host is under way
  | 'act' // choose a move now

/**
 * The damping of one host's balance loop, pure (times in, step out): act only after being above
 * the threshold for `holdMs` without a break, one move at a time, `cooldownMs` after each. A round
 * below the threshold starts the hold again.
 */
export class BalanceGovernor {
  private aboveSince: number | undefined
  private coolUntil = 0
  private moving = false

  constructor (private readonly timing: { holdMs: number, cooldownMs: number }) {}

  step (nowMs: number, above: boolean): GovernorStep {
    if (this.moving) return 'busy'
    if (!above) { this.aboveSince = undefined; return nowMs < this.coolUntil ? 'cooling' : 'idle' }
    this.aboveSince ??= nowMs
    if (nowMs < this.coolUntil) return 'cooling'
    return nowMs - this.aboveSince >= this.timing.holdMs ? 'act' : 'holding'
  }

  /** A move (or a recommendation) starts. */
  begin (): void {
    this.moving = true
  }

  /** It ended (either way): cool down, and hold afresh before the next. */
  end (nowMs: number): void {
    this.moving = false
    this.coolUntil = nowMs + this.timing.cooldownMs
    this.aboveSince = undefined
  }

  /** Balancing switched off: forget the hold. */
  reset (): void {
    this.aboveSince = undefined
  }
}
