import { describe, expect, it } from 'vitest'
import { ControlError } from '../src/control/errors.js'
import { askUntilAnswered, backoffMs } from '../src/negotiate/commit-confirm.js'

/** An ask that is silent (UNAVAILABLE) `silentFor` times, then answers 'committed'. */
function slowHost (silentFor: number): { ask: () => Promise<string>, asks: () => number } {
  let n = 0
  return {
    ask: async () => {
      if (++n <= silentFor) throw new ControlError('UNAVAILABLE', `no answer (${n})`)
      return 'committed'
    },
    asks: () => n
  }
}

/** A clock that moves only when the code sleeps. */
function virtualTime (): { now: () => number, sleep: (ms: number) => Promise<void>, slept: number[] } {
  let t = 0
  const slept: number[] = []
  return { now: () => t, sleep: async (ms) => { slept.push(ms); t += ms }, slept }
}

describe('asking the commit host until it answers', () => {
  it('keeps asking a busy host that is alive, backing off after three quick asks', async () => {
    const host = slowHost(6)
    const clock = virtualTime()
    await expect(askUntilAnswered(host.ask, { gone: () => false, forMs: 30_000, ...clock })).resolves.toBe('committed')
    expect(host.asks()).toBe(7)
    expect(clock.slept).toEqual([100, 200, 400, 800])
  })

  it('gives up after three asks when the host is dead, with the last error', async () => {
    const host = slowHost(100)
    await expect(askUntilAnswered(host.ask, { gone: () => true, forMs: 30_000, ...virtualTime() })).rejects.toMatchObject({ code: 'UNAVAILABLE', message: 'no answer (3)' })
    expect(host.asks()).toBe(3)
  })

  it('gives up on a live host still silent after the time allowed', async () => {
    const host = slowHost(1000)
    const clock = virtualTime()
    await expect(askUntilAnswered(host.ask, { gone: () => false, forMs: 10_000, ...clock })).rejects.toMatchObject({ code: 'UNAVAILABLE' })
    expect(clock.now()).toBeGreaterThanOrEqual(10_000)
    expect(clock.now()).toBeLessThan(12_000)
  })

  it('does not ask again after an answer that is not silence', async () => {
    let n = 0
    const refused = async (): Promise<string> => { n++; throw new ControlError('INVALID_ARGUMENT', 'bad token') }
    await expect(askUntilAnswered(refused, { gone: () => false, forMs: 30_000, ...virtualTime() })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    expect(n).toBe(1)
  })

  it('backs off 0, 0, 100 … 2000 ms', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9].map(backoffMs)).toEqual([0, 0, 100, 200, 400, 800, 1600, 2000, 2000])
  })
})
