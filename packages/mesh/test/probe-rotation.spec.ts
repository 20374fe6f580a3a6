import { describe, expect, it } from 'vitest'
import { ProbeRotation } from '../src/probe-rotation.js'

describe('ProbeRotation (member probing order)', () => {
  it('visits every eligible host once per round, in a new order each round', () => {
    const r = new ProbeRotation()
    const hosts = new Set(['a', 'b', 'c', 'd', 'e'])
    const rounds = [0, 1, 2, 3].map(() => [0, 1, 2, 3, 4].map(() => r.pick(hosts)))
    for (const round of rounds) expect([...round].sort()).toEqual(['a', 'b', 'c', 'd', 'e'])
    expect(new Set(rounds.map((x) => x.join(''))).size).toBeGreaterThan(1)
  })

  it('passes over hosts not eligible now: a host that falls silent is the very next pick', () => {
    const r = new ProbeRotation()
    const all = new Set(['a', 'b', 'c', 'd'])
    const first = r.pick(all) as string
    const silent = [...all].find((h) => h !== first) as string
    // Only the silent host is quiet: the rest of the round is passed over (or a new round drawn).
    expect(r.pick(new Set([silent]))).toBe(silent)
    expect(r.pick(new Set([silent]))).toBe(silent)
    // Back to all hosts: the picks spread over them again.
    const round = [0, 1, 2, 3].map(() => r.pick(all))
    expect(new Set(round).size).toBeGreaterThanOrEqual(3)
  })

  it('picks nothing when no host is eligible', () => {
    expect(new ProbeRotation().pick(new Set())).toBeUndefined()
  })
})
