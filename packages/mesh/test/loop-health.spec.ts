import { afterEach, describe, expect, it, vi } from 'vitest'
import { IDLE_STOP_MS, localLoopLagMs, loopMonitorRunning } from '../src/loop-health.js'

describe('the event-loop lag monitor', () => {
  afterEach(() => { vi.useRealTimers() })

  it('runs only while asked: it starts on the first question and stops a quiet minute after the last', () => {
    vi.useFakeTimers()
    expect(loopMonitorRunning()).toBe(false)
    expect(localLoopLagMs()).toBe(0)
    expect(loopMonitorRunning()).toBe(true)
    // Asked again half-way: the quiet minute counts from then.
    vi.advanceTimersByTime(IDLE_STOP_MS / 2)
    localLoopLagMs()
    vi.advanceTimersByTime(IDLE_STOP_MS - 2_000)
    expect(loopMonitorRunning()).toBe(true)
    vi.advanceTimersByTime(3_000)
    expect(loopMonitorRunning()).toBe(false)
    // Asked again, it starts again (and knows nothing yet).
    expect(localLoopLagMs()).toBe(0)
    expect(loopMonitorRunning()).toBe(true)
    vi.advanceTimersByTime(IDLE_STOP_MS + 1_000)
    expect(loopMonitorRunning()).toBe(false)
  })
})
