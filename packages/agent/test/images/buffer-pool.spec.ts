import { afterEach, describe, expect, it, vi } from 'vitest'
import { BufferPool } from '../../src/images/buffer-pool.js'

describe('BufferPool', () => {
  afterEach(() => { vi.useRealTimers() })

  it('a buffer given back is handed out again; twice given back, it is still handed out once', () => {
    const pool = new BufferPool(1024, 4)
    const a = pool.get(1000)
    expect(a.length).toBe(1000)
    // A view into it (a decoded chunk inside its frame) gives the whole buffer back.
    pool.put(a.subarray(6))
    pool.put(a)
    expect(pool.kept).toBe(1)
    const b = pool.get(1024)
    expect(b.buffer).toBe(a.buffer)
    const c = pool.get(10)
    expect(c.buffer).not.toBe(a.buffer)
  })

  it('buffers it did not make, and sizes beyond its own, are left alone', () => {
    const pool = new BufferPool(1024, 4)
    const big = pool.get(4096)
    expect(big.length).toBe(4096)
    pool.put(big)
    pool.put(Buffer.alloc(1024))
    expect(pool.kept).toBe(0)
  })

  it('keeps at most maxFree, and none after a quiet spell', () => {
    vi.useFakeTimers()
    const pool = new BufferPool(64, 2, 1_000)
    const all = [pool.get(64), pool.get(64), pool.get(64)]
    for (const b of all) pool.put(b)
    expect(pool.kept).toBe(2)
    vi.advanceTimersByTime(1_001)
    expect(pool.kept).toBe(0)
  })
})
