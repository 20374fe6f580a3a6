import { describe, expect, it } from 'vitest'
import { acceleratorFilter } from '../src/filters/accelerator.js'
import { affinityFilter, antiAffinityFilter } from '../src/filters/affinity.js'
import { capacityFilter } from '../src/filters/capacity.js'
import { cpuModelFilter } from '../src/filters/cpu-model.js'
import { exclusionFilter } from '../src/filters/exclusion.js'
import { hostStateFilter } from '../src/filters/host-state.js'
import { labelFilter } from '../src/filters/labels.js'
import { CPU_MODELS, GIB, freeCapacity, prepareFilters, type FilterCode, type HostFilter, type HostSnapshot, type PlacementRequest } from '../src/index.js'
import { host, hostUsing, vm } from './fixtures.js'

/** Runs one filter as the ranker would: undefined check = filter not applicable = host passes. */
function verdict (filter: HostFilter, request: PlacementRequest, h: HostSnapshot): FilterCode | 'pass' {
  const check = filter(request)
  if (check === undefined) return 'pass'
  return check(h, freeCapacity(h.capacity))?.filter ?? 'pass'
}

describe('hostStateFilter', () => {
  it.each([
    ['alive', 'active', 'pass'],
    ['suspect', 'active', 'HOST_STATE'],
    ['dead', 'active', 'HOST_STATE'],
    ['alive', 'draining', 'HOST_STATE'],
    ['alive', 'drained', 'HOST_STATE'],
    ['alive', 'leaving', 'HOST_STATE']
  ] as const)('%s/%s → %s', (state, adminState, expected) => {
    expect(verdict(hostStateFilter, vm(), host('h', { state, adminState }))).toBe(expected)
  })

  it('reports the state that disqualified the host', () => {
    const r = hostStateFilter(vm())?.(host('h', { adminState: 'draining' }), freeCapacity(host('h').capacity))
    expect(r).toMatchObject({ filter: 'HOST_STATE', state: 'draining', reason: 'host is draining' })
  })
})

describe('capacityFilter', () => {
  const need = { vcpus: 4, memoryBytes: 8 * GIB, diskBytes: 100 * GIB }
  it.each([
    ['empty host', { vcpus: 0, memoryBytes: 0, diskBytes: 0 }, 'pass'],
    ['exactly full after placement', { vcpus: 12, memoryBytes: 56 * GIB, diskBytes: 924 * GIB }, 'pass'],
    ['one byte short of memory', { vcpus: 0, memoryBytes: 56 * GIB + 1, diskBytes: 0 }, 'CAPACITY_MEMORY'],
    ['one vCPU short', { vcpus: 13, memoryBytes: 0, diskBytes: 0 }, 'CAPACITY_CPU'],
    ['disk short', { vcpus: 0, memoryBytes: 0, diskBytes: 1000 * GIB }, 'CAPACITY_DISK'],
    ['memory reported before cpu', { vcpus: 16, memoryBytes: 64 * GIB, diskBytes: 0 }, 'CAPACITY_MEMORY']
  ] as const)('%s → %s', (_name, allocated, expected) => {
    expect(verdict(capacityFilter, vm({ resources: need }), hostUsing('h', allocated))).toBe(expected)
  })

  it('refuses a host whose advert carries no number', () => {
    const base = host('h')
    const broken: HostSnapshot = { ...base, capacity: { ...base.capacity, total: { ...base.capacity.total, memoryBytes: Number.NaN } } }
    expect(verdict(capacityFilter, vm({ resources: need }), broken)).toBe('CAPACITY_MEMORY')
  })

  it('counts reservations and overcommit', () => {
    const base = host('h')
    const reserved: HostSnapshot = { ...base, capacity: { ...base.capacity, reservations: { vcpus: 0, memoryBytes: 60 * GIB, diskBytes: 0 } } }
    expect(verdict(capacityFilter, vm({ resources: need }), reserved)).toBe('CAPACITY_MEMORY')
    const overcommitted: HostSnapshot = { ...base, capacity: { ...base.capacity, allocated: { vcpus: 30, memoryBytes: 0, diskBytes: 0 }, overcommit: { cpu: 4, memory: 1, disk: 1 } } }
    expect(verdict(capacityFilter, vm({ resources: need }), overcommitted)).toBe('pass')
  })

  it('says what is needed and what is free', () => {
    const h = hostUsing('h', { vcpus: 0, memoryBytes: 62 * GIB, diskBytes: 0 })
    const r = capacityFilter(vm({ resources: need }))?.(h, freeCapacity(h.capacity))
    expect(r).toMatchObject({ need: 8 * GIB, free: 2 * GIB, reason: 'has 2048 MiB memory free, needs 8192 MiB' })
  })
})

describe('acceleratorFilter', () => {
  it.each([
    ['kvm', 'kvm', 'pass'],
    ['kvm', 'tcg', 'ACCELERATOR'],
    ['tcg', 'kvm', 'ACCELERATOR'],
    ['tcg', 'tcg', 'pass'],
    [undefined, 'tcg', 'pass'],
    [undefined, 'kvm', 'pass']
  ] as const)('VM %s on a %s host → %s', (wanted, has, expected) => {
    expect(verdict(acceleratorFilter, vm({ accelerator: wanted }), host('h', { accelerator: has }))).toBe(expected)
  })

  it.each([
    ['tcg', 'kvm', 'ACCELERATOR'],
    ['kvm', 'tcg', 'ACCELERATOR'],
    ['tcg', 'tcg', 'pass'],
    ['kvm', 'kvm', 'pass']
  ] as const)('a live migration of a guest under %s to a %s host → %s', (liveOn, has, expected) => {
    expect(verdict(acceleratorFilter, vm({ liveOn }), host('h', { accelerator: has }))).toBe(expected)
  })

  it('says why: a migration never crosses accelerators', () => {
    const r = acceleratorFilter(vm({ liveOn: 'tcg' }))?.(host('h', { accelerator: 'kvm' }), freeCapacity(host('h', { accelerator: 'kvm' }).capacity))
    expect(r).toMatchObject({ filter: 'ACCELERATOR', detail: 'tcg', reason: 'host runs kvm, the VM runs under tcg and QEMU cannot migrate a guest across accelerators' })
  })
})

describe('labelFilter', () => {
  const labels = { zone: 'a', rack: 'r1' }
  it.each([
    [{ key: 'zone', op: 'eq', value: 'a' }, 'pass'],
    [{ key: 'zone', op: 'eq', value: 'b' }, 'LABELS'],
    [{ key: 'zone', op: 'ne', value: 'b' }, 'pass'],
    [{ key: 'zone', op: 'ne', value: 'a' }, 'LABELS'],
    [{ key: 'site', op: 'ne', value: 'x' }, 'pass'], // as Nomad: an unset label is "not equal"
    [{ key: 'site', op: 'eq', value: 'x' }, 'LABELS'],
    [{ key: 'rack', op: 'exists' }, 'pass'],
    [{ key: 'gpu', op: 'exists' }, 'LABELS'],
    [{ key: 'gpu', op: 'notExists' }, 'pass'],
    [{ key: 'rack', op: 'notExists' }, 'LABELS'],
    [{ key: 'constructor', op: 'exists' }, 'LABELS'] // prototype keys are not labels
  ] as const)('%j → %s', (constraint, expected) => {
    expect(verdict(labelFilter, vm({ constraints: [constraint] }), host('h', { labels }))).toBe(expected)
  })

  it('names the constraint that failed', () => {
    const h = host('h', { labels })
    const r = labelFilter(vm({ constraints: [{ key: 'zone', op: 'eq', value: 'a' }, { key: 'rack', op: 'ne', value: 'r1' }] }))?.(h, freeCapacity(h.capacity))
    expect(r).toMatchObject({ filter: 'LABELS', detail: 'rack!=r1', reason: 'does not match rack!=r1 (rack is r1)' })
  })
})

describe('affinity filters', () => {
  const h = host('h', { vmGroups: { db: 2, web: 0 } })
  it.each([
    [['db'], 'pass'],
    [['db', 'cache'], 'AFFINITY'],
    [['web'], 'AFFINITY'], // a group with a zero count runs nothing here
    [['toString'], 'AFFINITY']
  ] as const)('affinity %j → %s', (groups, expected) => {
    expect(verdict(affinityFilter, vm({ affinity: groups }), h)).toBe(expected)
  })
  it.each([
    [['db'], 'ANTI_AFFINITY'],
    [['web', 'cache'], 'pass'],
    [['cache', 'db'], 'ANTI_AFFINITY']
  ] as const)('anti-affinity %j → %s', (groups, expected) => {
    expect(verdict(antiAffinityFilter, vm({ antiAffinity: groups }), h)).toBe(expected)
  })
})

describe('cpuModelFilter', () => {
  const broadwell = new Set(CPU_MODELS.find((m) => m.name === 'Broadwell-noTSX')?.flags)
  it.each([
    [undefined, 'pass'],
    ['host', 'pass'],
    ['qemu64', 'pass'],
    ['Haswell-noTSX', 'pass'],
    ['Broadwell-v2', 'pass'], // the versioned name works too
    ['Skylake-Client-noTSX-IBRS', 'CPU_MODEL'],
    ['EPYC', 'CPU_MODEL'],
    ['Pentium-MMX-Turbo', 'CPU_MODEL'] // unknown: refused, not guessed
  ] as const)('%s on a Broadwell host → %s', (model, expected) => {
    expect(verdict(cpuModelFilter, vm({ cpuModel: model }), host('h', { cpuFlags: broadwell }))).toBe(expected)
  })

  // A hypervisor's guest (this project's CI machines among them) may not list mtrr; KVM emulates MTRRs anyway.
  it('qemu64 fits a host whose /proc/cpuinfo lacks mtrr', () => {
    const noMtrr = new Set([...broadwell].filter((f) => f !== 'mtrr'))
    expect(verdict(cpuModelFilter, vm({ cpuModel: 'qemu64' }), host('h', { accelerator: 'kvm', cpuFlags: noMtrr }))).toBe('pass')
  })

  it('TCG emulates qemu64 whatever the host CPU has; KVM cannot offer what the CPU lacks', () => {
    expect(verdict(cpuModelFilter, vm({ cpuModel: 'qemu64' }), host('h', { accelerator: 'tcg', cpuFlags: new Set() }))).toBe('pass')
    expect(verdict(cpuModelFilter, vm({ cpuModel: 'qemu64' }), host('h', { accelerator: 'kvm', cpuFlags: new Set() }))).toBe('CPU_MODEL')
    expect(verdict(cpuModelFilter, vm({ cpuModel: 'Haswell-noTSX' }), host('h', { accelerator: 'tcg', cpuFlags: new Set() }))).toBe('CPU_MODEL')
  })
})

describe('exclusionFilter', () => {
  it.each([
    [{ exclude: ['h'] }, 'EXCLUDED'],
    [{ exclude: ['other'] }, 'pass'],
    [{ host: 'other' }, 'EXCLUDED'],
    [{ host: 'h' }, 'pass'],
    [{ host: 'node-7.example' }, 'pass'], // pinned by hostname
    [{ host: '' }, 'pass']
  ] as const)('%j → %s', (request, expected) => {
    expect(verdict(exclusionFilter, vm(request), host('h', { hostname: 'node-7.example' }))).toBe(expected)
  })
})

describe('filter chain', () => {
  it('skips the filters a request does not use', () => {
    expect(prepareFilters(vm())).toHaveLength(2) // host state and capacity only
    expect(prepareFilters(vm({ accelerator: 'kvm', constraints: [{ key: 'zone', op: 'exists' }], cpuModel: 'qemu64', exclude: ['x'] }))).toHaveLength(6)
  })

  it('reports the cheapest failing reason first', () => {
    const h = hostUsing('h', { vcpus: 16, memoryBytes: 64 * GIB, diskBytes: 0 }, { state: 'dead', accelerator: 'tcg' })
    const reasons = prepareFilters(vm({ accelerator: 'kvm' })).map((check) => check(h, freeCapacity(h.capacity))?.filter)
    expect(reasons).toEqual(['HOST_STATE', 'CAPACITY_MEMORY', 'ACCELERATOR'])
  })
})
