import { describe, expect, it } from 'vitest'
import { heartbeatIntervalMs, remainingSuspicionTimeMs, suspicionTimeoutMs } from '../src/index.js'

describe('suspicionTimeoutMs', () => {
  it.each([
    // mult, n, interval → ms
    [1, 0, 1000, 1000],
    [1, 1, 1000, 1000],
    [1, 10, 1000, 1000],
    [1, 50, 1000, 1698],
    [1, 100, 1000, 2000],
    [1, 1000, 1000, 3000],
    [4, 1000, 1000, 12000],
    [2, 100, 3000, 12000],
    [1, 5, 200, 200]
  ])('mult %d, n %d, interval %d ms → %d ms', (mult, n, interval, expected) => {
    expect(suspicionTimeoutMs(mult, n, interval)).toBe(expected)
  })
})

describe('remainingSuspicionTimeMs', () => {
  it.each([
    // confirmations, expected k, elapsed, min, max → remaining
    [0, 2, 0, 1000, 4000, 4000],
    [1, 2, 0, 1000, 4000, 2107],
    [2, 2, 0, 1000, 4000, 1000],
    [3, 2, 0, 1000, 4000, 1000],
    [0, 2, 1500, 1000, 4000, 2500],
    [2, 2, 1500, 1000, 4000, -500],
    [0, 0, 0, 1000, 4000, 1000],
    [1, 3, 200, 1000, 3000, 1800],
    [0, 2, 0, 1000, 1000, 1000]
  ])('%d of %d confirmations, %d ms elapsed, min %d, max %d → %d ms', (c, k, elapsed, min, max, expected) => {
    expect(remainingSuspicionTimeMs(c, k, elapsed, min, max)).toBe(expected)
  })
})

describe('heartbeatIntervalMs', () => {
  it.each([
    [1000, 3, 200, 1000],
    [1000, 200, 200, 1000],
    [1000, 500, 200, 2500],
    [1000, 1000, 200, 5000],
    [200, 5, 200, 200],
    [1000, 0, 200, 1000]
  ])('base %d, n %d, %d adverts/s → %d ms', (base, n, rate, expected) => {
    expect(heartbeatIntervalMs(base, n, rate)).toBe(expected)
  })
})
