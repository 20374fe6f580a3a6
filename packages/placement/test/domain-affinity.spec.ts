import { describe, expect, it } from 'vitest'
import { affinityFilter, antiAffinityFilter } from '../src/filters/affinity.js'
import { freeCapacity, placeVm, type FilterCode, type HostFilter, type HostSnapshot, type PlacementRequest } from '../src/index.js'
import { host, vm } from './fixtures.js'

/** Zone a: a1 runs a db VM, a2 nothing. Zone b: b1 runs web. nolabel: no zone label, runs db. */
const view: HostSnapshot[] = [
  host('a1', { labels: { zone: 'a' }, vmGroups: { db: 1 } }),
  host('a2', { labels: { zone: 'a' }, vmGroups: {} }),
  host('b1', { labels: { zone: 'b' }, vmGroups: { web: 2 } }),
  host('nolabel', { labels: {}, vmGroups: { db: 1 } })
]

function verdicts (filter: HostFilter, request: PlacementRequest): Record<string, FilterCode | 'pass'> {
  const check = filter(request, view)
  return Object.fromEntries(view.map((h) => [h.id, check === undefined ? 'pass' : check(h, freeCapacity(h.capacity))?.filter ?? 'pass']))
}

describe('affinity filters scoped by a failure domain (affinityDomain)', () => {
  it.each([
    // by host (no affinityDomain): only the host's own VMs count
    [{ antiAffinity: ['db'] }, { a1: 'ANTI_AFFINITY', a2: 'pass', b1: 'pass', nolabel: 'ANTI_AFFINITY' }],
    // by zone: a2 shares zone a with a1's db; a host without the label cannot prove its zone
    [{ antiAffinity: ['db'], affinityDomain: 'zone' }, { a1: 'ANTI_AFFINITY', a2: 'ANTI_AFFINITY', b1: 'pass', nolabel: 'FAILURE_DOMAIN' }],
    [{ antiAffinity: ['web'], affinityDomain: 'zone' }, { a1: 'pass', a2: 'pass', b1: 'ANTI_AFFINITY', nolabel: 'FAILURE_DOMAIN' }],
    [{ antiAffinity: ['web'], affinityDomain: 'rack' }, { a1: 'FAILURE_DOMAIN', a2: 'FAILURE_DOMAIN', b1: 'FAILURE_DOMAIN', nolabel: 'FAILURE_DOMAIN' }]
  ] as const)('anti-affinity %j', (rules, expected) => {
    expect(verdicts(antiAffinityFilter, vm(rules))).toEqual(expected)
  })

  it.each([
    [{ affinity: ['db'] }, { a1: 'pass', a2: 'AFFINITY', b1: 'AFFINITY', nolabel: 'pass' }],
    [{ affinity: ['db'], affinityDomain: 'zone' }, { a1: 'pass', a2: 'pass', b1: 'AFFINITY', nolabel: 'FAILURE_DOMAIN' }],
    [{ affinity: ['db', 'web'], affinityDomain: 'zone' }, { a1: 'AFFINITY', a2: 'AFFINITY', b1: 'AFFINITY', nolabel: 'FAILURE_DOMAIN' }]
  ] as const)('affinity %j', (rules, expected) => {
    expect(verdicts(affinityFilter, vm(rules))).toEqual(expected)
  })

  it('says which domain holds the group', () => {
    const r = antiAffinityFilter(vm({ antiAffinity: ['db'], affinityDomain: 'zone' }), view)?.(view[1]!, freeCapacity(view[1]!.capacity))
    expect(r).toMatchObject({ filter: 'ANTI_AFFINITY', reason: 'its zone already runs a VM of group db', detail: 'db' })
  })

  it('placeVm counts a domain over the whole view even when it ranks a sample', () => {
    // 40 hosts in zones z0..z3; zone z0's member runs on h0 only. Sampling 4 of them must still see it.
    const many = Array.from({ length: 40 }, (_, i) => host(`h${i}`, { labels: { zone: `z${i % 4}` }, vmGroups: i === 0 ? { db: 1 } : {} }))
    for (let seed = 0; seed < 20; seed++) {
      const r = placeVm(vm({ antiAffinity: ['db'], affinityDomain: 'zone', seed }), many, { sampleAbove: 4, sampleSize: 4 })
      expect(r.chosen?.host.labels.zone).not.toBe('z0')
    }
  })
})
