import { describe, expect, it } from 'vitest'
import { Semaphore } from '../src/util/semaphore.js'

describe('Semaphore', () => {
  it('never runs more than its limit at once, and runs every task in FIFO order', async () => {
    const slots = new Semaphore(2)
    let active = 0
    let peak = 0
    const started: number[] = []
    const gates = Array.from({ length: 6 }, () => { let release!: () => void; const promise = new Promise<void>((resolve) => { release = resolve }); return { promise, resolve: release } })
    const runs = gates.map(async (gate, i) => await slots.run(async () => {
      started.push(i)
      active++
      peak = Math.max(peak, active)
      await gate.promise
      active--
      return i
    }))
    await new Promise((resolve) => setImmediate(resolve))
    expect(started).toEqual([0, 1])
    expect(slots.queued).toBe(4)
    for (const g of gates) { g.resolve(); await new Promise((resolve) => setImmediate(resolve)) }
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3, 4, 5])
    expect(started).toEqual([0, 1, 2, 3, 4, 5])
    expect(peak).toBe(2)
  })

  it('frees its slot when a task throws', async () => {
    const slots = new Semaphore(1)
    await expect(slots.run(async () => { throw new Error('boom') })).rejects.toThrow('boom')
    expect(await slots.run(async () => 'next')).toBe('next')
  })
})
