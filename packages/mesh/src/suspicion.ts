/**
 * Liveness maths, pure and table-tested (after memberlist's `suspicionTimeout` and
 * `remainingSuspicionTime`, re-derived here for our heartbeat-driven detector).
 */

/**
 * Minimum suspicion timeout: `mult × max(1, log10(max(1, n))) × intervalMs`. Grows with log N
 * because an advert needs ~log N gossip hops to reach everyone, so a live host's heartbeat
 * is more likely to be late in a bigger cluster.
 */
export function suspicionTimeoutMs (mult: number, n: number, intervalMs: number): number {
  const nodeScale = Math.max(1, Math.log10(Math.max(1, n)))
  return Math.floor(mult * nodeScale * intervalMs)
}

/**
 * Time left before a suspect is declared dead, given `confirmations` of `expected` so far.
 * With no confirmation the timeout is `maxMs`; it falls toward `minMs` logarithmically as
 * confirmations arrive, `timeout = max − log(c+1)/log(k+1) × (max − min)`, never below `minMs`.
 * In memberlist the confirmations are other members' independent suspicions; here they are
 * failed direct probes (a ping that cannot reach the host), spaced one probe interval apart.
 * Negative when the timeout has passed.
 */
export function remainingSuspicionTimeMs (confirmations: number, expected: number, elapsedMs: number, minMs: number, maxMs: number): number {
  const frac = expected > 0 ? Math.log(confirmations + 1) / Math.log(expected + 1) : 1
  const raw = Math.floor(maxMs - frac * (maxMs - minMs))
  return Math.max(minMs, raw) - elapsedMs
}

/**
 * Heartbeat period for a cluster of `n` hosts: the base period, spaced out so that each host
 * receives at most `maxAdvertsPerSecond` heartbeats per second in total (1,000 hosts at 13/s
 * heartbeat every 77 s). Changes are still published at once; only the "I am alive" repeats
 * are spaced.
 */
export function heartbeatIntervalMs (baseMs: number, n: number, maxAdvertsPerSecond: number): number {
  const spacedMs = Math.ceil((Math.max(1, n) / maxAdvertsPerSecond) * 1000)
  return Math.max(baseMs, spacedMs)
}
