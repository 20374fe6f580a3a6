/**
 * Asking the host a commit went to until it answers. A commit is idempotent per VM id, so asking
 * again is safe; under load a commit is slow, not lost, and giving up early would leave the VM in
 * doubt ("it may exist there") for no reason. Only a host the view holds dead, or one still silent
 * after `forMs`, ends it — with the last error, after three asks at least.
 */
import type { ControlError } from '../control/errors.js'

/** Asks made back to back before the back-off starts (the behaviour before: three asks). */
const QUICK_ASKS = 3
const FIRST_BACKOFF_MS = 100
const MAX_BACKOFF_MS = 2_000

export interface AskOptions {
  /** Whether the host is gone (dead in this agent's view): no use asking again. */
  gone: () => boolean
  forMs: number
  onRetry?: (attempt: number, err: Error) => void
  sleep?: (ms: number) => Promise<void>
  now?: () => number
}

/** Pause before ask `attempt + 1`: none for the first three, then 100 ms doubling to 2 s. */
export function backoffMs (attempt: number): number {
  return attempt < QUICK_ASKS ? 0 : Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (attempt - QUICK_ASKS))
}

export async function askUntilAnswered<T> (ask: () => Promise<T>, o: AskOptions): Promise<T> {
  const now = o.now ?? Date.now
  const sleep = o.sleep ?? (async (ms: number) => { await new Promise((resolve) => setTimeout(resolve, ms)) })
  const deadline = now() + o.forMs
  for (let attempt = 1; ; attempt++) {
    try {
      return await ask()
    } catch (err) {
      // Only silence is asked again; an answer (refused, invalid) is the commit's outcome.
      if ((err as ControlError).code !== 'UNAVAILABLE') throw err
      if (attempt >= QUICK_ASKS && (o.gone() || now() >= deadline)) throw err
      o.onRetry?.(attempt, err as Error)
      const pause = backoffMs(attempt)
      if (pause > 0) await sleep(pause)
    }
  }
}
