import { describe, expect, it } from 'vitest'
import { KeyedQueue } from '../src/util/keyed-queue.js'

const tick = async (ms = 5): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

describe('KeyedQueue', () => {
  it('runs one key\'s work in arrival order, one at a time, and other keys alongside', async () => {
    const q = new KeyedQueue()
    const log: string[] = []
    let running = 0
    let most = 0
    const job = (name: string, ms: number) => async (): Promise<void> => {
      running++; most = Math.max(most, running); log.push(`${name}+`)
      await tick(ms)
      log.push(`${name}-`); running--
    }
    const a = Promise.all([q.run('a', job('a1', 20), () => {}), q.run('a', job('a2', 1), () => {})])
    const b = q.run('b', job('b1', 1), () => {})
    expect(q.busy('a')).toBe(true)
    await Promise.all([a, b])
    expect(log.indexOf('a1-')).toBeLessThan(log.indexOf('a2+'))
    expect(log.indexOf('b1-')).toBeLessThan(log.indexOf('a1-')) // b did not wait for a
    expect(most).toBe(2)
    expect(q.busy('a')).toBe(false)
  })

  it('hands a failure to onError and runs what was queued after it', async () => {
    const q = new KeyedQueue()
    const errors: unknown[] = []
    let ran = false
    const failing = q.run('k', async () => { throw new Error('boom') }, (e) => { errors.push(e) })
    const after = q.run('k', async () => { ran = true }, (e) => { errors.push(e) })
    await expect(failing).resolves.toBeUndefined()
    await after
    expect(errors.map((e) => (e as Error).message)).toEqual(['boom'])
    expect(ran).toBe(true)
  })

  it('idle() waits for everything queued so far', async () => {
    const q = new KeyedQueue()
    let done = 0
    for (const k of ['x', 'y', 'x']) void q.run(k, async () => { await tick(); done++ }, () => {})
    await q.idle()
    expect(done).toBe(3)
    expect(q.busy('x') || q.busy('y')).toBe(false)
  })
})
