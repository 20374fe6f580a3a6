import { describe, expect, it } from 'vitest'
import { BalanceGovernor, isNewerSetting, nextSetting, UsageSampler, type GovernorStep } from '../src/balance/index.js'

describe('BalanceGovernor', () => {
  type Op = { at: number, above: boolean, want: GovernorStep } | { at: number, begin: true } | { at: number, end: true }
  it.each<{ name: string, ops: Op[] }>([
    { name: 'acts only after the hold, every round above', ops: [{ at: 0, above: true, want: 'holding' }, { at: 50, above: true, want: 'holding' }, { at: 100, above: true, want: 'act' }] },
    { name: 'a round below starts the hold again', ops: [{ at: 0, above: true, want: 'holding' }, { at: 60, above: false, want: 'idle' }, { at: 100, above: true, want: 'holding' }, { at: 199, above: true, want: 'holding' }, { at: 200, above: true, want: 'act' }] },
    { name: 'one move at a time', ops: [{ at: 0, above: true, want: 'holding' }, { at: 100, above: true, want: 'act' }, { at: 100, begin: true }, { at: 150, above: true, want: 'busy' }, { at: 400, above: false, want: 'busy' }] },
    {
      name: 'cools down after a move; the hold starts afresh after it, and runs through the cool-down',
      ops: [
        { at: 0, above: true, want: 'holding' }, { at: 100, above: true, want: 'act' }, { at: 100, begin: true }, { at: 110, end: true },
        { at: 250, above: true, want: 'cooling' }, { at: 309, above: true, want: 'cooling' }, { at: 310, above: true, want: 'holding' }, { at: 349, above: true, want: 'holding' }, { at: 350, above: true, want: 'act' }
      ]
    },
    { name: 'cooling below the threshold says so', ops: [{ at: 0, begin: true }, { at: 0, end: true }, { at: 10, above: false, want: 'cooling' }, { at: 201, above: false, want: 'idle' }] }
  ])('$name', ({ ops }) => {
    const g = new BalanceGovernor({ holdMs: 100, cooldownMs: 200 })
    for (const op of ops) {
      if ('begin' in op) g.begin()
      else if ('end' in op) g.end(op.at)
      else expect(g.step(op.at, op.above), `at ${op.at}`).toBe(op.want)
    }
  })
})

describe('balance setting (last writer wins)', () => {
  it.each([
    { a: { mode: 'auto' as const, version: 2, setBy: 'a' }, b: { mode: 'off' as const, version: 1, setBy: 'z' }, newer: true },
    { a: { mode: 'auto' as const, version: 1, setBy: 'a' }, b: { mode: 'off' as const, version: 1, setBy: 'b' }, newer: false },
    { a: { mode: 'auto' as const, version: 1, setBy: 'b' }, b: { mode: 'off' as const, version: 1, setBy: 'a' }, newer: true },
    { a: { mode: 'auto' as const, version: 1, setBy: 'a' }, b: { mode: 'auto' as const, version: 1, setBy: 'a' }, newer: false }
  ])('$a.version/$a.setBy newer than $b.version/$b.setBy: $newer', ({ a, b, newer }) => {
    expect(isNewerSetting(a, b)).toBe(newer)
  })

  it('a new setting beats the current one even from a host whose clock is behind', () => {
    const current = { mode: 'auto' as const, version: 5_000, setBy: 'other' }
    const next = nextSetting('off', current, 'me', 1_000)
    expect(next).toEqual({ mode: 'off', version: 5_001, setBy: 'me' })
    expect(isNewerSetting(next, current)).toBe(true)
  })
})

describe('UsageSampler', () => {
  it('CPU cores from the counters\' deltas, memory from RSS; tells only real changes', () => {
    const s = new UsageSampler()
    expect(s.record('v', { cpuSeconds: 10, uptimeSeconds: 20, rssBytes: 1000 })).toBe(true)
    expect(s.usage('v')).toEqual({ cpuCores: 0.5, memoryBytes: 1000 })
    // 15 s of CPU in 10 s: 1.5 cores.
    expect(s.record('v', { cpuSeconds: 25, uptimeSeconds: 30, rssBytes: 1000 })).toBe(true)
    expect(s.usage('v')?.cpuCores).toBeCloseTo(1.5)
    // Nearly the same: not worth an advert.
    expect(s.record('v', { cpuSeconds: 40.2, uptimeSeconds: 40, rssBytes: 1050 })).toBe(false)
    // A restarted guest (counters went back): the average since its start.
    s.record('v', { cpuSeconds: 1, uptimeSeconds: 4, rssBytes: 1000 })
    expect(s.usage('v')?.cpuCores).toBeCloseTo(0.25)
    s.keepOnly(new Set())
    expect(s.usage('v')).toBeUndefined()
  })
})
