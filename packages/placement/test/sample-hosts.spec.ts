import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { sampleHosts } from '../src/sample-hosts.js'
import { seededRandom } from '../src/index.js'

describe('sampleHosts', () => {
  it('draws distinct members of the list, at most as many as it holds', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 250 }), fc.string(), (n, k, seed) => {
      const list = Array.from({ length: n }, (_, i) => i)
      const sample = sampleHosts(list, k, seededRandom(seed))
      expect(sample).toHaveLength(Math.min(n, k))
      expect(new Set(sample).size).toBe(sample.length)
      for (const x of sample) expect(x >= 0 && x < n).toBe(true)
    }), { numRuns: 200 })
  })

  it('gives every host about the same chance', () => {
    const hits = new Array<number>(20).fill(0)
    const random = seededRandom('uniform')
    const list = Array.from({ length: 20 }, (_, i) => i)
    for (let round = 0; round < 2000; round++) for (const x of sampleHosts(list, 5, random)) hits[x] = (hits[x] ?? 0) + 1
    // each host expects 2000 × 5/20 = 500 draws; ±15 % is > 5 standard deviations
    for (const h of hits) expect(Math.abs(h - 500)).toBeLessThan(75)
  })
})

describe('seededRandom', () => {
  it('repeats for a seed, differs across seeds, stays in [0, 1)', () => {
    const draw = (seed: string | number): number[] => { const r = seededRandom(seed); return Array.from({ length: 100 }, () => r()) }
    expect(draw('vm-42')).toEqual(draw('vm-42'))
    expect(draw('vm-42')).not.toEqual(draw('vm-43'))
    expect(draw(7)).toEqual(draw('7')) // a numeric seed is its decimal string
    for (const v of [...draw('a'), ...draw(0)]) expect(v >= 0 && v < 1).toBe(true)
  })
})
