import { describe, expect, it } from 'vitest'
import { AdaptiveLimit, type LoadReport } from '../src/util/adaptive-limit.js'

const tick = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

/** A task held until released, which may report congestion before it ends. */
function gated (): { task: (load: LoadReport) => Promise<void>, release: (congested?: boolean) => void, started: () => boolean } {
  let open!: (congested: boolean) => void
  const gate = new Promise<boolean>((resolve) => { open = resolve })
  let began = false
  return {
    task: async (load) => { began = true; if (await gate) load.congested() },
    release: (congested = false) => { open(congested) },
    started: () => began
  }
}

describe('AdaptiveLimit', () => {
  it('starts at its maximum and never runs more than its limit at once, FIFO', async () => {
    const limit = new AdaptiveLimit({ min: 1, max: 2, cooldownMs: 1000 })
    const tasks = Array.from({ length: 5 }, () => gated())
    const runs = tasks.map(async (t) => { await limit.run(t.task) })
    await tick()
    expect(tasks.map((t) => t.started())).toEqual([true, true, false, false, false])
    expect([limit.running, limit.queued]).toEqual([2, 3])
    tasks[0]?.release()
    await tick()
    expect(tasks.map((t) => t.started())).toEqual([true, true, true, false, false])
    expect(limit.running).toBe(2)
    for (const t of tasks) t.release()
    await Promise.all(runs)
    expect([limit.running, limit.queued]).toEqual([0, 0])
  })

  it('halves on congestion, once per cooldown, down to its minimum', async () => {
    let now = 0
    const limit = new AdaptiveLimit({ min: 2, max: 16, cooldownMs: 1000, now: () => now })
    const busy = async (load: LoadReport): Promise<void> => { load.congested() }
    await limit.run(busy)
    expect(limit.limit).toBe(8)
    // The other tasks in flight when it got busy say so too: still one signal.
    await limit.run(busy)
    await limit.run(busy)
    expect(limit.limit).toBe(8)
    now += 1000
    await limit.run(busy)
    expect(limit.limit).toBe(4)
    for (let i = 0; i < 5; i++) { now += 1000; await limit.run(busy) }
    expect(limit.limit).toBe(2)
  })

  it('grows back by about one per limit\'s worth of quiet tasks, up to its maximum', async () => {
    let now = 0
    const limit = new AdaptiveLimit({ min: 1, max: 6, initial: 2, cooldownMs: 1000, now: () => now })
    const quiet = async (): Promise<void> => {}
    await limit.run(quiet)
    await limit.run(quiet)
    expect(limit.limit).toBe(2) // 2 + 1/2 + 1/2.5 = 2.9
    await limit.run(quiet)
    expect(limit.limit).toBe(3)
    for (let i = 0; i < 100; i++) await limit.run(quiet)
    expect(limit.limit).toBe(6)
    now += 5000
    await limit.run(async (load) => { load.congested() })
    expect(limit.limit).toBe(3)
  })

  it('admits waiters as the limit grows, and frees the slot of a task that throws', async () => {
    const limit = new AdaptiveLimit({ min: 1, max: 3, initial: 1, cooldownMs: 0 })
    const first = gated()
    const second = gated()
    const a = limit.run(first.task)
    const b = limit.run(second.task)
    await tick()
    expect([first.started(), second.started()]).toEqual([true, false])
    first.release()
    await a
    await tick()
    expect(second.started()).toBe(true)
    second.release()
    await b
    await expect(limit.run(async () => { throw new Error('boom') })).rejects.toThrow('boom')
    expect(limit.running).toBe(0)
    expect(() => new AdaptiveLimit({ min: 0, max: 3, cooldownMs: 0 })).toThrow(RangeError)
  })
})
