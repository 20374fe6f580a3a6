import { describe, expect, it } from 'vitest'
import { applyMove, BALANCE_DEFAULTS, bestMove, GIB, greedyPlan, hostUtilisation, spread, type BalanceHost, type BalanceVm, type HostSnapshot } from '../src/index.js'
import { host } from './fixtures.js'

/** A VM of `vcpus` and `memGib`, measured at the same (unless `usage` says otherwise). */
function bvm (id: string, vcpus: number, memGib: number, extra: Partial<BalanceVm> = {}): BalanceVm {
  return { id, name: id, request: { resources: { vcpus, memoryBytes: memGib * GIB, diskBytes: 0 }, liveOn: 'kvm' }, ...extra }
}

/** A 16-core, 64 GiB host running `vms`, its allocation and groups counted from them. */
function bhost (id: string, vms: BalanceVm[], overrides: Partial<HostSnapshot> = {}): BalanceHost {
  const h = host(id, overrides)
  const allocated = vms.reduce((a, v) => ({ vcpus: a.vcpus + v.request.resources.vcpus, memoryBytes: a.memoryBytes + v.request.resources.memoryBytes, diskBytes: 0 }), { vcpus: 0, memoryBytes: 0, diskBytes: 0 })
  const vmGroups: Record<string, number> = {}
  for (const v of vms) if (v.request.group !== undefined) vmGroups[v.request.group] = (vmGroups[v.request.group] ?? 0) + 1
  return { snapshot: { ...h, capacity: { ...h.capacity, allocated }, vmGroups }, vms }
}

/** n VMs of 2 cores and 8 GiB: each is 0.5 × 2/16 + 0.5 × 8/64 = 12.5 % of a host. */
function vms (prefix: string, n: number, extra: Partial<BalanceVm> = {}): BalanceVm[] {
  return Array.from({ length: n }, (_, i) => bvm(`${prefix}${i}`, 2, 8, extra))
}

describe('spread', () => {
  it.each([
    { us: [0.5, 0.5, 0.5], mean: 0.5, cv: 0 },
    { us: [1, 0], mean: 0.5, cv: 1 },
    { us: [0.6, 0.3, 0.3], mean: 0.4, cv: Math.sqrt(0.02) / 0.4 },
    { us: [], mean: 0, cv: 0 },
    { us: [0, 0], mean: 0, cv: 0 }
  ])('$us → mean $mean, cv $cv', ({ us, mean, cv }) => {
    const s = spread(us)
    expect(s.mean).toBeCloseTo(mean, 9)
    expect(s.cv).toBeCloseTo(cv, 9)
  })

  it('counts measured use over allocation, weighing cpu and memory', () => {
    const h = bhost('a', [bvm('v', 8, 32, { usage: { cpuCores: 4, memoryBytes: 16 * GIB } })])
    expect(hostUtilisation(h, 0.5)).toBeCloseTo(0.5 * 4 / 16 + 0.5 * 16 / 64, 9)
    expect(hostUtilisation(bhost('b', [bvm('w', 8, 32)]), 0.5)).toBeCloseTo(0.5, 9)
    expect(hostUtilisation(bhost('c', [bvm('w', 8, 32)]), 1)).toBeCloseTo(0.5, 9)
  })
})

describe('bestMove', () => {
  it.each([
    {
      name: 'a host within the threshold stays put',
      hosts: [bhost('a', vms('a', 3)), bhost('b', vms('b', 3)), bhost('c', vms('c', 2))],
      source: 'a',
      expect: { code: 'WITHIN_THRESHOLD' }
    },
    {
      name: 'an unknown host does not take part',
      hosts: [bhost('a', vms('a', 3))],
      source: 'z',
      expect: { code: 'NOT_ELIGIBLE' }
    },
    {
      name: 'a draining host does not take part',
      hosts: [bhost('a', vms('a', 6), { adminState: 'draining' }), bhost('b', [])],
      source: 'a',
      expect: { code: 'NOT_ELIGIBLE' }
    },
    {
      name: 'a loaded host moves one VM to the emptiest host',
      hosts: [bhost('a', vms('a', 6)), bhost('b', vms('b', 1)), bhost('c', [])],
      source: 'a',
      expect: { to: 'c' }
    },
    {
      name: 'never onto a draining host',
      hosts: [bhost('a', vms('a', 6)), bhost('b', vms('b', 1)), bhost('c', [], { adminState: 'draining' })],
      source: 'a',
      expect: { to: 'b' }
    },
    {
      name: 'pinned VMs (--no-balance) never move',
      hosts: [bhost('a', vms('a', 6, { pinned: 'no-balance' })), bhost('b', []), bhost('c', [])],
      source: 'a',
      expect: { code: 'NO_GAIN', reason: /none of its 6 VMs may move \(6 pinned/ }
    },
    {
      name: 'the only movable VM among pinned ones moves',
      hosts: [bhost('a', [...vms('p', 5, { pinned: 'no-balance' }), bvm('free', 2, 8)]), bhost('b', []), bhost('c', [])],
      source: 'a',
      expect: { vm: 'free' }
    },
    {
      name: 'a VM too big to help (it would overshoot by more than it closes) stays',
      hosts: [bhost('a', [bvm('big', 12, 48)]), bhost('b', [bvm('s', 2, 8)]), bhost('c', [bvm('t', 2, 8)])],
      source: 'a',
      expect: { code: 'NO_GAIN', reason: /margin/ }
    },
    {
      name: 'the VM that closes the gap best is chosen, not the biggest',
      hosts: [bhost('a', [bvm('big', 10, 40), bvm('mid', 4, 16), bvm('small', 2, 8)]), bhost('b', [bvm('s', 4, 16)]), bhost('c', [bvm('t', 4, 16)])],
      source: 'a',
      expect: { vm: 'mid' }
    },
    {
      name: 'anti-affinity: never next to a VM of a group it avoids',
      hosts: [
        bhost('a', vms('a', 6, { request: { resources: { vcpus: 2, memoryBytes: 8 * GIB, diskBytes: 0 }, antiAffinity: ['db'], liveOn: 'kvm' } })),
        bhost('b', [bvm('db1', 1, 1, { request: { resources: { vcpus: 1, memoryBytes: GIB, diskBytes: 0 }, group: 'db', liveOn: 'kvm' } })]),
        bhost('c', vms('c', 2))
      ],
      source: 'a',
      expect: { to: 'c' }
    },
    {
      name: 'placement refuses every helpful target (memory): no move, and it says so',
      hosts: [
        bhost('a', vms('a', 6)),
        bhost('b', [], { capacity: { ...host('b').capacity, reservations: { vcpus: 0, memoryBytes: 60 * GIB, diskBytes: 0 } } }),
        bhost('c', vms('c', 5))
      ],
      source: 'a',
      expect: { code: 'NO_GAIN', reason: /filters refuse/ }
    },
    {
      name: 'a live guest stays on its accelerator',
      hosts: [bhost('a', vms('a', 6)), bhost('b', vms('b', 3)), bhost('c', [], { accelerator: 'tcg' })],
      source: 'a',
      expect: { to: 'b' }
    }
  ])('$name', ({ hosts, source, expect: want }) => {
    const r = bestMove(hosts, source)
    if ('code' in want) {
      expect(r.move).toBeUndefined()
      if (r.move === undefined) {
        expect(r.why.code).toBe(want.code)
        if ('reason' in want && want.reason !== undefined) expect(r.why.reason).toMatch(want.reason)
      }
      return
    }
    expect(r.move, r.move === undefined ? r.why.reason : '').toBeDefined()
    const m = r.move as NonNullable<typeof r.move>
    if ('to' in want) expect(m.to).toBe(want.to)
    if ('vm' in want) expect(m.vmId).toBe(want.vm)
    expect(m.from).toBe(source)
    expect(m.gain).toBeGreaterThanOrEqual(BALANCE_DEFAULTS.margin)
    expect(m.cvAfter).toBeLessThan(m.cvBefore)
    expect(m.toAfter).toBeLessThan(m.fromBefore)
    expect(m.reason).toMatch(/above the mean/)
  })

  it('past many refusals it still finds the one target placement accepts', () => {
    const full = { ...host('x').capacity, reservations: { vcpus: 0, memoryBytes: 60 * GIB, diskBytes: 0 } }
    const hosts = [bhost('a', vms('a', 8)), ...Array.from({ length: 12 }, (_, i) => bhost(`e${i}`, [], { capacity: full })), bhost('z', vms('z', 2))]
    const r = bestMove(hosts, 'a')
    expect(r.move?.to).toBe('z')
  })

  it('the reverse of any move it proposes never pays (no ping-pong)', () => {
    let hosts = [bhost('a', vms('a', 8)), bhost('b', vms('b', 1)), bhost('c', [])]
    const r = bestMove(hosts, 'a')
    expect(r.move).toBeDefined()
    const m = r.move as NonNullable<typeof r.move>
    hosts = applyMove(hosts, m.vmId, m.from, m.to)
    const back = bestMove(hosts, m.to)
    expect(back.move?.vmId).not.toBe(m.vmId)
  })
})

describe('greedyPlan', () => {
  it.each([
    { name: '12 VMs on one of 3 hosts', hosts: () => [bhost('a', vms('a', 12)), bhost('b', []), bhost('c', [])], moves: 8 },
    { name: 'already balanced', hosts: () => [bhost('a', vms('a', 4)), bhost('b', vms('b', 4)), bhost('c', vms('c', 4))], moves: 0 },
    { name: 'a host joins empty', hosts: () => [bhost('a', vms('a', 6)), bhost('b', vms('b', 6)), bhost('c', vms('c', 6)), bhost('d', [])], moves: 4 },
    { name: 'mixed sizes on two of four hosts', hosts: () => [bhost('a', [bvm('x1', 8, 32), bvm('x2', 2, 8), bvm('x3', 1, 4), bvm('x4', 4, 16)]), bhost('b', [bvm('y1', 4, 8), bvm('y2', 2, 4), bvm('y3', 1, 2)]), bhost('c', []), bhost('d', [])], moves: undefined }
  ])('$name: balanced within the threshold, each VM moved once at most', ({ hosts, moves }) => {
    const input = hosts()
    const plan = greedyPlan(input)
    if (moves !== undefined) expect(plan.moves).toHaveLength(moves)
    expect(plan.truncated).toBe(false)
    expect(plan.cvAfter).toBeLessThanOrEqual(plan.cvBefore)
    const moved = plan.moves.map((m) => m.vmId)
    expect(new Set(moved).size).toBe(moved.length)
    // Each move lowered the spread: a falling potential cannot cycle.
    for (let i = 1; i < plan.moves.length; i++) expect(plan.moves[i]!.cvBefore).toBeLessThan(plan.moves[i - 1]!.cvBefore)
    // Where it stopped, no host has a move left.
    for (const h of plan.hosts) expect(bestMove(plan.hosts, h.snapshot.id).move).toBeUndefined()
    // The input was not touched, and the same input gives the same plan.
    expect(greedyPlan(input).moves.map((m) => `${m.vmId}>${m.to}`)).toEqual(plan.moves.map((m) => `${m.vmId}>${m.to}`))
  })

  it('ends with every host within the threshold of the mean when VMs are small', () => {
    const plan = greedyPlan([bhost('a', vms('a', 12)), bhost('b', []), bhost('c', [])])
    const us = [...plan.after.values()]
    const mean = us.reduce((a, b) => a + b, 0) / us.length
    for (const u of us) expect(u - mean).toBeLessThanOrEqual(BALANCE_DEFAULTS.threshold)
    expect(plan.cvAfter).toBe(0)
  })

  it('stops at maxMoves and says so', () => {
    const plan = greedyPlan([bhost('a', vms('a', 12)), bhost('b', []), bhost('c', [])], BALANCE_DEFAULTS, 3)
    expect(plan.moves).toHaveLength(3)
    expect(plan.truncated).toBe(true)
  })
})
