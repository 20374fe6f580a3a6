/**
 * At most one log line per key per interval; the lines in between are counted and the next one
 * that is written says how many were suppressed. A flood of bad messages must not become a flood
 * of log lines (issue 22: refusals "logged at a bounded rate").
 */
export class RateLimitedLog {
  private readonly keys = new Map<string, { at: number, suppressed: number }>()

  constructor (private readonly everyMs: number, private readonly clock: () => number = Date.now, private readonly maxKeys = 64) {}

  /** Calls `write(suppressed)` unless a line for `key` was written less than `everyMs` ago. */
  log (key: string, write: (suppressed: number) => void): boolean {
    const now = this.clock()
    const k = this.keys.get(key)
    if (k !== undefined && now - k.at < this.everyMs) {
      k.suppressed++
      return false
    }
    if (k === undefined && this.keys.size >= this.maxKeys) this.keys.delete(this.keys.keys().next().value as string)
    this.keys.set(key, { at: now, suppressed: 0 })
    write(k?.suppressed ?? 0)
    return true
  }
}
