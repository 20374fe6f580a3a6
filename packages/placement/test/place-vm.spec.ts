import { describe, expect, it } from 'vitest'
import { GIB, placeVm, toPlacementExplanation, type HostSnapshot } from '../src/index.js'
import { host, hostUsing, vm } from './fixtures.js'

const fourGib = { vcpus: 2, memoryBytes: 4 * GIB, diskBytes: 0 }

describe('placeVm', () => {
  const view: HostSnapshot[] = [
    hostUsing('full', { vcpus: 0, memoryBytes: 62 * GIB, diskBytes: 0 }),
    hostUsing('half', { vcpus: 4, memoryBytes: 32 * GIB, diskBytes: 0 }),
    hostUsing('quarter', { vcpus: 2, memoryBytes: 16 * GIB, diskBytes: 0 }),
    host('draining', { adminState: 'draining' }),
    host('empty')
  ]

  it('binpack chooses the fullest host that fits and explains every other host', () => {
    const result = placeVm(vm({ resources: fourGib }), view)
    expect(result.chosen?.hostId).toBe('half')
    expect(result.candidates.map((c) => c.hostId)).toEqual(['half', 'quarter', 'empty'])
    expect(result.rejected.map((r) => [r.hostId, r.filter])).toEqual([['full', 'CAPACITY_MEMORY'], ['draining', 'HOST_STATE']])
    // binpack (0.5 + 0.5 × mean(6/16, 36/64, 0)) weighted 1, least-loaded 1 weighted 0.1
    expect(result.chosen?.score).toBeCloseTo((0.5 + 0.5 * (6 / 16 + 36 / 64 + 0) / 3 + 0.1) / 1.1, 9)
    expect(result.summary).toBe('chose half (score 0.687); 3 of 5 hosts fit; 1 is draining, 1 lacks memory (need 4096 MiB, most free 2048 MiB)')
    expect(result).toMatchObject({ examined: 5, unexamined: 0, sampled: false })
  })

  it('spread chooses the emptiest host', () => {
    expect(placeVm(vm({ resources: fourGib, policy: 'spread' }), view).chosen?.hostId).toBe('empty')
  })

  it('spread with a spread key sends a group to its emptiest failure domain', () => {
    const zoned = [
      host('a-empty', { labels: { zone: 'a' } }),
      hostUsing('a-web', fourGib, { labels: { zone: 'a' }, vmGroups: { web: 1 } }),
      hostUsing('b-busy', { vcpus: 8, memoryBytes: 32 * GIB, diskBytes: 0 }, { labels: { zone: 'b' } })
    ]
    const result = placeVm(vm({ resources: fourGib, policy: 'spread', group: 'web', spreadBy: 'zone' }), zoned)
    expect(result.chosen?.hostId).toBe('b-busy') // fuller than a-empty, but zone b runs no web VM yet
    expect(result.chosen?.scores.map((s) => s.scorer)).toEqual(['spread', 'domain-spread', 'least-loaded'])
  })

  it('lets soft affinity outweigh a slightly better fit', () => {
    const withCache = { ...view[2] as HostSnapshot, vmGroups: { cache: 1 } }
    const result = placeVm(vm({ resources: fourGib, softAffinity: ['cache'] }), [view[1] as HostSnapshot, withCache])
    expect(result.chosen?.hostId).toBe('quarter')
    expect(result.chosen?.scores.map((s) => s.scorer)).toEqual(['binpack', 'least-loaded', 'soft-affinity'])
  })

  it('says why nothing fits', () => {
    const result = placeVm(vm({ resources: { vcpus: 1, memoryBytes: 80 * GIB, diskBytes: 0 } }), view)
    expect(result.chosen).toBeUndefined()
    expect(result.summary).toBe('no host fits: 4 lack memory (need 81920 MiB, most free 65536 MiB), 1 is draining')
  })

  it('breaks ties by the seed, whatever the order of the view', () => {
    const twins = Array.from({ length: 8 }, (_, i) => host(`twin-${i}`))
    const winners = new Set<string>()
    for (const seed of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']) {
      const forward = placeVm(vm({ seed }), twins).chosen?.hostId
      const backward = placeVm(vm({ seed }), [...twins].reverse()).chosen?.hostId
      expect(backward).toBe(forward)
      winners.add(forward ?? '')
    }
    expect(winners.size).toBeGreaterThan(1) // different seeds spread ties over different hosts
  })

  it('maps onto the wire PlacementExplanation', () => {
    const result = placeVm(vm({ resources: fourGib }), view)
    const explanation = toPlacementExplanation(result, 2, 'quarter')
    expect(explanation).toMatchObject({ chosenHost: 'quarter', candidates: 3, attempts: 2, summary: result.summary })
    expect(explanation.totalScore).toBe(result.candidates[1]?.score)
    expect(explanation.rejected).toEqual([
      { hostId: 'full', filter: 'CAPACITY_MEMORY', reason: 'has 2048 MiB memory free, needs 4096 MiB' },
      { hostId: 'draining', filter: 'HOST_STATE', reason: 'host is draining' }
    ])
  })
})

describe('placeVm sampling', () => {
  const big = Array.from({ length: 2000 }, (_, i) => host(`h${i}`))

  it('examines only the sample above the threshold', () => {
    const result = placeVm(vm(), big, { sampleAbove: 1000, sampleSize: 32 })
    expect(result).toMatchObject({ sampled: true, examined: 32, unexamined: 1968 })
    expect(result.summary).toMatch(/\(sampled 32 of 2000 hosts\)$/)
  })

  it('scans the whole view at or below the threshold', () => {
    expect(placeVm(vm(), big.slice(0, 1000), { sampleAbove: 1000 })).toMatchObject({ sampled: false, examined: 1000 })
  })

  it('falls back to a full scan when the sample holds no feasible host', () => {
    const needle = big.map((h, i) => i === 1234 ? h : { ...h, adminState: 'draining' as const })
    const result = placeVm(vm(), needle, { sampleAbove: 0, sampleSize: 16 })
    expect(result.chosen?.hostId).toBe('h1234')
    expect(result).toMatchObject({ sampled: false, examined: 2000 })
  })

  it('draws the same sample for the same seed', () => {
    const a = placeVm(vm({ seed: 'k' }), big, { sampleAbove: 0, sampleSize: 16 })
    const b = placeVm(vm({ seed: 'k' }), big, { sampleAbove: 0, sampleSize: 16 })
    expect(b.candidates.map((c) => c.hostId)).toEqual(a.candidates.map((c) => c.hostId))
  })
})
