import { afterEach, describe, expect, it, vi } from 'vitest'
import { BULK_LINGER_MS, HeapMode } from '../src/heap-mode.js'

describe('HeapMode', () => {
  afterEach(() => { vi.useRealTimers() })

  it('a lean process gives V8 its own heap growth while bulk data moves, and takes the lean one back once it stops', () => {
    vi.useFakeTimers()
    const flags: string[] = []
    const mode = new HeapMode((f) => { flags.push(f) }, () => Date.now())
    mode.leanHeap()
    expect(flags).toEqual(['--heap-growing-percent=20'])
    mode.bulkWork()
    mode.bulkWork()
    expect(flags).toEqual(['--heap-growing-percent=20', '--heap-growing-percent=0'])
    // Chunks keep coming: still bulk well past the linger from the first.
    for (let i = 0; i < 10; i++) { vi.advanceTimersByTime(1_000); mode.bulkWork() }
    expect(mode.inBulk()).toBe(true)
    expect(flags).toHaveLength(2)
    vi.advanceTimersByTime(BULK_LINGER_MS + 1_000)
    expect(mode.inBulk()).toBe(false)
    expect(flags).toEqual(['--heap-growing-percent=20', '--heap-growing-percent=0', '--heap-growing-percent=20'])
    // And again for the next transfer.
    mode.bulkWork()
    expect(flags.at(-1)).toBe('--heap-growing-percent=0')
  })

  it('a process that never asked for the lean heap (tests, library users) is never touched', () => {
    vi.useFakeTimers()
    const flags: string[] = []
    const mode = new HeapMode((f) => { flags.push(f) }, () => Date.now())
    mode.bulkWork()
    vi.advanceTimersByTime(BULK_LINGER_MS * 2)
    expect(flags).toEqual([])
    expect(mode.inBulk()).toBe(false)
  })
})
