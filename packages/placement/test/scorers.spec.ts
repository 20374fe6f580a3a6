import { describe, expect, it } from 'vitest'
import { allocatableCapacity, freeCapacity, GIB, placeVm, type HostScorer, type HostSnapshot, type PlacementRequest } from '../src/index.js'
import { binpackScorer } from '../src/scorers/binpack.js'
import { domainSpreadScorer } from '../src/scorers/domain-spread.js'
import { leastLoadedScorer } from '../src/scorers/least-loaded.js'
import { imageLocalityScorer } from '../src/scorers/image-locality.js'
import { softAffinityScorer } from '../src/scorers/soft-affinity.js'
import { spreadScorer } from '../src/scorers/spread.js'
import { host, hostUsing, vm } from './fixtures.js'

function score (scorer: HostScorer, request: PlacementRequest, h: HostSnapshot, ranked: readonly HostSnapshot[] = [h]): number | undefined {
  return scorer.prepare(request, ranked)?.(h, freeCapacity(h.capacity), allocatableCapacity(h.capacity))
}

const small = { vcpus: 1, memoryBytes: 4 * GIB, diskBytes: 64 * GIB }
const half = { vcpus: 8, memoryBytes: 32 * GIB, diskBytes: 512 * GIB }
const empty = host('empty')
const halfFull = hostUsing('half', half)
const big = { ...host('big'), capacity: { ...host('big').capacity, total: { vcpus: 64, memoryBytes: 256 * GIB, diskBytes: 4096 * GIB } } }

describe('binpackScorer', () => {
  it.each([
    // host, expected score for a VM of `small` (1/16 of the 16-vCPU, 64 GiB, 1 TiB host)
    ['an empty host', empty, 0.5 * (16 / 17)],
    ['a half-full host', halfFull, 0.5 + 0.5 * (0.5 + 1 / 16)]
  ] as const)('%s scores %d', (_name, h, expected) => {
    expect(score(binpackScorer, vm({ resources: small }), h)).toBeCloseTo(expected, 9)
  })

  it('prefers any host in use to an empty one, the fullest first', () => {
    const nearlyFull = hostUsing('nearly', { vcpus: 14, memoryBytes: 56 * GIB, diskBytes: 900 * GIB })
    const barelyUsed = hostUsing('barely', { vcpus: 1, memoryBytes: 1 * GIB, diskBytes: 0 })
    const scores = [nearlyFull, halfFull, barelyUsed, big, empty].map((h) => score(binpackScorer, vm({ resources: small }), h) ?? -1)
    expect([...scores].sort((a, b) => b - a)).toEqual(scores)
  })

  it('opens the largest empty host when none in use fits', () => {
    expect(score(binpackScorer, vm({ resources: small }), big)).toBeGreaterThan(score(binpackScorer, vm({ resources: small }), empty) ?? 1)
  })

  it('counts a host holding reservations as in use', () => {
    const reserved = { ...empty, capacity: { ...empty.capacity, reservations: small } }
    expect(score(binpackScorer, vm({ resources: small }), reserved)).toBeGreaterThanOrEqual(0.5)
  })
})

describe('spreadScorer', () => {
  it.each([
    ['an empty host', empty, 1 - 1 / 16],
    ['a half-full host', halfFull, 1 - (0.5 + 1 / 16)]
  ] as const)('%s scores %d', (_name, h, expected) => {
    expect(score(spreadScorer, vm({ resources: small }), h)).toBeCloseTo(expected, 9)
  })
})

describe('leastLoadedScorer', () => {
  it.each([
    [undefined, 1],
    [{ load1: 0.5, cpuUtilization: 0 }, 1],
    [{ load1: 8, cpuUtilization: 0.75 }, 0.25],
    [{ load1: 20, cpuUtilization: 1.3 }, 0], // clamped: a bad advert cannot push a score out of [0, 1]
    [{ load1: 0, cpuUtilization: Number.NaN }, 1]
  ] as const)('load %j scores %d', (load, expected) => {
    expect(score(leastLoadedScorer, vm(), host('h', { load }))).toBeCloseTo(expected, 9)
  })
})

describe('softAffinityScorer', () => {
  const h = host('h', { vmGroups: { db: 1, web: 3 } })
  it.each([
    [{}, undefined],
    [{ softAffinity: ['db'] }, 1],
    [{ softAffinity: ['cache'] }, 0],
    [{ softAntiAffinity: ['web'] }, 0],
    [{ softAntiAffinity: ['cache'] }, 1],
    [{ softAffinity: ['db', 'cache'], softAntiAffinity: ['web', 'batch'] }, 0.5]
  ] as const)('%j scores %s', (rules, expected) => {
    expect(score(softAffinityScorer, vm(rules), h)).toBe(expected)
  })
})

describe('domainSpreadScorer', () => {
  const hosts = [
    host('a1', { labels: { zone: 'a' }, vmGroups: { web: 2 } }),
    host('a2', { labels: { zone: 'a' }, vmGroups: { web: 2 } }),
    host('b1', { labels: { zone: 'b' }, vmGroups: { web: 2, db: 5 } }),
    host('c1', { labels: { zone: 'c' } }),
    host('x', { labels: {} })
  ]
  const request = vm({ group: 'web', spreadBy: 'zone', policy: 'spread' })
  it.each([
    ['a1', 0], // zone a holds 4 web VMs, the most
    ['b1', 0.5], // zone b holds 2 (db VMs do not count)
    ['c1', 1], // zone c holds none
    ['x', 0] // no zone label: cannot prove its domain
  ] as const)('%s scores %d', (id, expected) => {
    expect(score(domainSpreadScorer, request, hosts.find((h) => h.id === id) as HostSnapshot, hosts)).toBe(expected)
  })

  it('scores every labelled host 1 while the group runs nowhere', () => {
    expect(score(domainSpreadScorer, vm({ group: 'cache', spreadBy: 'zone' }), hosts[0] as HostSnapshot, hosts)).toBe(1)
  })

  it('needs both a group and a spread key', () => {
    expect(domainSpreadScorer.prepare(vm({ spreadBy: 'zone' }), hosts)).toBeUndefined()
    expect(domainSpreadScorer.prepare(vm({ group: 'web' }), hosts)).toBeUndefined()
  })
})

describe('imageLocalityScorer', () => {
  const D = 'sha256:' + 'a'.repeat(64)
  it.each([
    ['a host holding the image', host('h', { images: new Set([D]) }), 1],
    ['a host holding other images', host('h', { images: new Set(['sha256:' + 'b'.repeat(64)]) }), 0],
    ['a host that says nothing of images', host('h'), 0]
  ] as const)('%s scores %d', (_name, h, expected) => {
    expect(score(imageLocalityScorer, vm({ image: D }), h)).toBe(expected)
  })

  it('has nothing to say of a VM without a library image', () => {
    expect(imageLocalityScorer.prepare(vm(), [empty])).toBeUndefined()
  })

  it('a holder wins between equal hosts, and is explained; a clearly better fit still wins', () => {
    const holder = host('holder', { images: new Set([D]) })
    const placed = placeVm(vm({ image: D, resources: small }), [host('other'), holder])
    expect(placed.chosen?.hostId).toBe('holder')
    expect(placed.chosen?.scores).toContainEqual({ scorer: 'image-locality', value: 1, weight: 0.25 })
    // binpack: a host already half full beats an empty holder by more than locality's weight.
    const fuller = hostUsing('fuller', { vcpus: 12, memoryBytes: 48 * GIB, diskBytes: 800 * GIB })
    const packed = placeVm(vm({ image: D, resources: small }), [fuller, holder])
    expect(packed.chosen?.hostId).toBe('fuller')
  })
})
