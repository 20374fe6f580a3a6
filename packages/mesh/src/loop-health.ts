/**
 * How late this process's event loop runs: the p99 delay over the last completed window.
 * One monitor per process (every host in a test or benchmark process shares the loop).
 *
 * The monitor is a libuv timer every RESOLUTION_MS: measured alone in a node process, 0.64 % of a
 * core (0.22 % at 50 ms), which an idle agent paid for its whole life once one probe had failed.
 * It now runs only while asked: it starts on the first question and stops IDLE_STOP_MS after the
 * last one, so a host whose probes all answer runs none.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'

const WINDOW_MS = 1000
const RESOLUTION_MS = 10
export const IDLE_STOP_MS = 60_000

let histogram: IntervalHistogram | undefined
let lastP99Ms = 0
let lastAskedMs = 0

/**
 * p99 event-loop delay of the last second, in ms. 0 until the monitor's first window completes
 * (it starts with the first question, and again after a quiet IDLE_STOP_MS).
 */
export function localLoopLagMs (): number {
  lastAskedMs = Date.now()
  if (histogram === undefined) {
    const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
    h.enable()
    histogram = h
    lastP99Ms = 0
    const timer = setInterval(() => {
      lastP99Ms = h.percentile(99) / 1e6
      h.reset()
      if (Date.now() - lastAskedMs < IDLE_STOP_MS) return
      h.disable()
      clearInterval(timer)
      histogram = undefined
    }, WINDOW_MS)
    timer.unref()
  }
  return lastP99Ms
}

/** Whether the monitor runs now (for tests). */
export function loopMonitorRunning (): boolean {
  return histogram !== undefined
}
