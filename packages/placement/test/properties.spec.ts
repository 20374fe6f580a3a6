import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  CPU_MODELS, GIB, findCpuModel, placeReplicaSet, placeVm,
  type HostSnapshot, type LabelConstraint, type PlacementRequest, type Resources
} from '../src/index.js'

const GROUPS = ['db', 'web', 'cache']
const ZONES = ['a', 'b', 'c']
const MODEL_NAMES = ['qemu64', 'Haswell-noTSX', 'Skylake-Client-noTSX-IBRS', 'EPYC', 'EPYC-Rome']

const resources = (maxVcpus: number, maxGib: number, minVcpus = 0, minGib = 0): fc.Arbitrary<Resources> => fc.record({
  vcpus: fc.integer({ min: minVcpus, max: maxVcpus }),
  memoryBytes: fc.integer({ min: minGib, max: maxGib }).map((g) => g * GIB),
  diskBytes: fc.integer({ min: minGib * 8, max: maxGib * 8 }).map((g) => g * GIB)
})

/** Mostly `empty`, sometimes something: each hard rule should bite in some runs, not in most. */
const sometimes = <T>(empty: T, arb: fc.Arbitrary<T>): fc.Arbitrary<T> =>
  fc.oneof({ weight: 3, arbitrary: fc.constant(empty) }, { weight: 1, arbitrary: arb })

const hostArb = (id: string): fc.Arbitrary<HostSnapshot> => fc.record({
  state: fc.oneof({ weight: 8, arbitrary: fc.constant('alive' as const) }, { weight: 1, arbitrary: fc.constantFrom('suspect' as const, 'dead' as const) }),
  adminState: fc.oneof({ weight: 8, arbitrary: fc.constant('active' as const) }, { weight: 1, arbitrary: fc.constantFrom('draining' as const, 'drained' as const, 'leaving' as const) }),
  zone: fc.option(fc.constantFrom(...ZONES), { nil: undefined }),
  rack: fc.option(fc.constantFrom('r1', 'r2'), { nil: undefined }),
  total: resources(32, 64, 8, 16),
  hostReserved: resources(2, 4),
  allocated: resources(12, 24),
  reservations: resources(2, 4),
  ratios: fc.record({ cpu: fc.constantFrom(1, 2, 4), memory: fc.constantFrom(1, 1.5), disk: fc.constantFrom(1, 1.25) }),
  accelerator: fc.constantFrom('kvm', 'tcg'),
  model: fc.constantFrom(...CPU_MODELS.map((m) => m.name)),
  groups: fc.dictionary(fc.constantFrom(...GROUPS), fc.integer({ min: 0, max: 3 })),
  cpuUtilization: fc.double({ min: 0, max: 1, noNaN: true })
}).map((h) => ({
  id,
  state: h.state,
  adminState: h.adminState,
  labels: { ...(h.zone === undefined ? {} : { zone: h.zone }), ...(h.rack === undefined ? {} : { rack: h.rack }) },
  capacity: { total: h.total, hostReserved: h.hostReserved, allocated: h.allocated, reservations: h.reservations, overcommit: h.ratios },
  accelerator: h.accelerator,
  cpuFlags: new Set(findCpuModel(h.model)?.flags),
  load: { load1: 0, cpuUtilization: h.cpuUtilization },
  vmGroups: h.groups
}))

const viewArb = (max: number): fc.Arbitrary<HostSnapshot[]> =>
  fc.integer({ min: 0, max }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => hostArb(`h${i}`))))

const constraintArb: fc.Arbitrary<LabelConstraint> = fc.record({
  key: fc.constantFrom('zone', 'rack', 'gpu'),
  op: fc.constantFrom('eq', 'ne', 'exists', 'notExists'),
  value: fc.constantFrom(...ZONES, 'r1')
})

const requestArb: fc.Arbitrary<PlacementRequest> = fc.record({
  resources: resources(4, 8),
  accelerator: fc.option(fc.constantFrom('kvm', 'tcg'), { nil: undefined }),
  group: fc.option(fc.constantFrom(...GROUPS), { nil: undefined }),
  constraints: sometimes([], fc.array(constraintArb, { minLength: 1, maxLength: 2 })),
  affinity: sometimes([], fc.subarray(GROUPS, { minLength: 1, maxLength: 1 })),
  antiAffinity: sometimes([], fc.subarray(GROUPS, { minLength: 1, maxLength: 2 })),
  softAffinity: fc.subarray(GROUPS),
  softAntiAffinity: fc.subarray(GROUPS),
  policy: fc.constantFrom('binpack', 'spread'),
  cpuModel: sometimes(undefined, fc.constantFrom(...MODEL_NAMES)),
  exclude: sometimes([], fc.subarray(['h0', 'h1', 'h2', 'h3'], { minLength: 1 })),
  replicas: fc.integer({ min: 1, max: 4 }),
  spreadBy: fc.option(fc.constantFrom('zone', 'rack'), { nil: undefined }),
  seed: fc.oneof(fc.string(), fc.integer())
})

/** An independent statement of the hard constraints, written apart from the filters it checks. */
function feasible (h: HostSnapshot, r: PlacementRequest): boolean {
  const c = h.capacity
  const limit = (d: keyof Resources, ratio: number): number => {
    const base = Math.max(0, c.total[d] - c.hostReserved[d])
    return ratio === 1 ? base : Math.floor(base * ratio)
  }
  const fits = (d: keyof Resources, ratio: number): boolean => r.resources[d] <= limit(d, ratio) - c.allocated[d] - c.reservations[d]
  const label = (k: string): string | undefined => h.labels[k]
  const runs = (g: string): boolean => (h.vmGroups[g] ?? 0) > 0
  return h.state === 'alive' && h.adminState === 'active' &&
    fits('vcpus', c.overcommit.cpu) && fits('memoryBytes', c.overcommit.memory) && fits('diskBytes', c.overcommit.disk) &&
    (r.accelerator === undefined || h.accelerator === r.accelerator) &&
    (r.constraints ?? []).every((k) =>
      k.op === 'eq' ? label(k.key) === k.value : k.op === 'ne' ? label(k.key) !== k.value : k.op === 'exists' ? label(k.key) !== undefined : label(k.key) === undefined) &&
    (r.affinity ?? []).every(runs) && !(r.antiAffinity ?? []).some(runs) &&
    (r.cpuModel === undefined || (findCpuModel(r.cpuModel)?.flags ?? []).every((f) => h.cpuFlags.has(f))) &&
    !(r.exclude ?? []).includes(h.id)
}

const RUNS = { numRuns: 150 }

describe('placement properties', () => {
  it('ranks exactly the feasible hosts and rejects every other host once, with a reason', () => {
    fc.assert(fc.property(viewArb(12), requestArb, (view, request) => {
      const result = placeVm(request, view)
      const ranked = result.candidates.map((c) => c.hostId)
      const rejected = result.rejected.map((r) => r.hostId)
      expect([...ranked, ...rejected].sort()).toEqual(view.map((h) => h.id).sort())
      for (const c of result.candidates) expect(feasible(c.host, request)).toBe(true)
      for (const r of result.rejected) {
        expect(feasible(view.find((h) => h.id === r.hostId) as HostSnapshot, request)).toBe(false)
        expect(r.reason.length).toBeGreaterThan(0)
      }
      expect(result.chosen).toBe(result.candidates[0])
    }), RUNS)
  })

  it('gives the same answer for the same seed, in any order of the view', () => {
    const viewAndPermutation = viewArb(12).chain((v) => fc.tuple(fc.constant(v), fc.shuffledSubarray(v, { minLength: v.length, maxLength: v.length })))
    fc.assert(fc.property(viewAndPermutation, requestArb, ([view, shuffled], request) => {
      const once = placeVm(request, view)
      expect(placeVm(request, view)).toEqual(once)
      expect(placeVm(request, shuffled).candidates.map((c) => c.hostId)).toEqual(once.candidates.map((c) => c.hostId))
    }), RUNS)
  })

  it('keeps scores within [0, 1], best first', () => {
    fc.assert(fc.property(viewArb(12), requestArb, (view, request) => {
      const scores = placeVm(request, view).candidates.map((c) => c.score)
      for (const s of scores) expect(s >= 0 && s <= 1).toBe(true)
      for (let i = 1; i < scores.length; i++) expect(scores[i - 1]).toBeGreaterThanOrEqual((scores[i] as number) - 1e-9)
    }), RUNS)
  })

  it('when sampling, still chooses only feasible hosts, and finds one whenever one exists', () => {
    fc.assert(fc.property(viewArb(30), requestArb, fc.integer({ min: 1, max: 8 }), (view, request, d) => {
      const result = placeVm(request, view, { sampleAbove: 0, sampleSize: d })
      if (result.chosen !== undefined) expect(feasible(result.chosen.host, request)).toBe(true)
      expect(result.chosen !== undefined).toBe(view.some((h) => feasible(h, request)))
    }), RUNS)
  })

  it('never puts two replicas in one failure domain', () => {
    fc.assert(fc.property(viewArb(12), requestArb, (view, request) => {
      const set = placeReplicaSet(request, view)
      const domains = set.hosts.map((h) => request.spreadBy === undefined ? h.hostId : h.host.labels[request.spreadBy])
      expect(domains.every((d) => d !== undefined)).toBe(true)
      expect(new Set(domains).size).toBe(domains.length)
      expect(set.domains).toEqual(domains)
      expect(set.hosts.length).toBeLessThanOrEqual(request.replicas ?? 1)
      for (const h of set.hosts) expect(feasible(h.host, request)).toBe(true)
      // incomplete only when no other feasible host sits in a domain not yet used
      if (!set.complete) {
        const unused = view.filter((h) => feasible(h, request) && !domains.includes(request.spreadBy === undefined ? h.id : h.labels[request.spreadBy]))
        expect(unused.filter((h) => request.spreadBy === undefined || h.labels[request.spreadBy] !== undefined)).toEqual([])
      }
    }), RUNS)
  })
})
