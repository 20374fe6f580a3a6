/**
 * How late this process's event loop runs: the p99 delay over the last completed window.
 * One monitor per process (every host in a test or benchmark process shares the loop).
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'

const WINDOW_MS = 1000
const RESOLUTION_MS = 10

let histogram: IntervalHistogram | undefined
let lastP99Ms = 0

/** p99 event-loop delay of the last second, in ms (0 until the first window completes). */
export function localLoopLagMs (): number {
  if (histogram === undefined) {
    histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
    histogram.enable()
    const h = histogram
    setInterval(() => {
      lastP99Ms = h.percentile(99) / 1e6
      h.reset()
    }, WINDOW_MS).unref()
  }
  return lastP99Ms
}
