import { describe, expect, it } from 'vitest'
import { holderRequest, holderState, nextPoint, nextPointKind, pointIntervalMs, releasableUpTo } from '../src/replication/replica-plan.js'
import { pointsToSend, type AvailablePoint } from '../src/replica/position.js'

const inc = (seq: number): AvailablePoint => ({ seq, kind: 'incremental', baseSeq: seq - 1 })
const full = (seq: number): AvailablePoint => ({ seq, kind: 'full', baseSeq: 0 })
/** A full point holding only the VM's layer over its library image. */
const layer = (seq: number, seed = false): AvailablePoint => ({ seq, kind: 'full', baseSeq: 0, onBase: true, ...(seed ? { seed } : {}) })
const wholeOnly = (epoch: number, seq: number): { epoch: number, seq: number, wholeOnly: boolean } => ({ epoch, seq, wholeOnly: true })
const at = (epoch: number, seq: number, takenAt = 0): { epoch: number, seq: number, takenAt: number } => ({ epoch, seq, takenAt })

describe('replica plan', () => {
  it.each([
    [5000, 2500], [1000, 500], [60_000, 30_000], [200, 500]
  ])('a point every half RPO: rpo %i ms → every %i ms', (rpo, every) => {
    expect(pointIntervalMs(rpo)).toBe(every)
  })

  it.each([
    ['no point yet', at(0, 0), 3, 10_000, true, 'seeding'],
    ['an older epoch (before a failover)', at(2, 9, 9_000), 3, 10_000, true, 'seeding'],
    ['fresh', at(3, 9, 9_000), 3, 10_000, true, 'in-sync'],
    ['exactly 2 × RPO old', at(3, 9, 0), 3, 10_000, true, 'in-sync'],
    ['older than 2 × RPO', at(3, 9, 0), 3, 10_001, true, 'lagging'],
    ['failing transfers', at(3, 9, 9_000), 3, 10_000, false, 'unreachable']
  ] as const)('holder state: %s', (_what, position, epoch, now, reachable, state) => {
    expect(holderState(position, epoch, now, 5_000, reachable)).toBe(state)
  })

  it.each([
    ['the driver needs a full point', { needsFull: true, lastSeq: 4, available: [inc(4)], served: [at(1, 4)] }, 'full'],
    ['nothing taken yet', { needsFull: false, lastSeq: 0, available: [], served: [at(0, 0)] }, 'full'],
    ['every holder at the newest point', { needsFull: false, lastSeq: 4, available: [inc(4)], served: [at(1, 4), at(1, 4)] }, 'incremental'],
    ['a holder behind, its points kept', { needsFull: false, lastSeq: 4, available: [inc(3), inc(4)], served: [at(1, 2), at(1, 4)] }, 'incremental'],
    ['a new holder (nothing yet)', { needsFull: false, lastSeq: 4, available: [inc(4)], served: [at(1, 4), at(0, 0)] }, 'full'],
    ['a holder behind the points kept', { needsFull: false, lastSeq: 4, available: [inc(4)], served: [at(1, 1)] }, 'full'],
    ['a holder of an older epoch', { needsFull: false, lastSeq: 4, available: [inc(4)], served: [at(0, 4)] }, 'full'],
    ['no holder served (all failing)', { needsFull: false, lastSeq: 4, available: [inc(4)], served: [] }, 'incremental'],
    ['a full point kept brings a new holder up', { needsFull: false, lastSeq: 5, available: [full(4), inc(5)], served: [at(0, 0)] }, 'incremental'],
    ['after a seed copy the next incremental counts from before it', { needsFull: false, lastSeq: 6, bitmapBase: 5, available: [inc(5), { seq: 6, kind: 'full', baseSeq: 0, seed: true }], served: [at(1, 5), at(0, 0)] }, 'incremental']
  ] as const)('next point kind: %s', (_what, input, kind) => {
    expect(nextPointKind({ ...input, epoch: 1, available: [...input.available], served: [...input.served] })).toBe(kind)
  })

  it.each([
    ['a VM on a base, every holder can get it: the layer alone', { needsFull: true, lastSeq: 0, available: [], served: [at(0, 0), at(0, 0)] }, { kind: 'full', whole: false }],
    ['a new holder without the base: the disks whole', { needsFull: false, lastSeq: 4, available: [layer(1), inc(4)], served: [at(1, 4), wholeOnly(0, 0)] }, { kind: 'full', whole: true }],
    ['the holder without the base has a whole point: incrementals go on', { needsFull: false, lastSeq: 6, bitmapBase: 4, available: [layer(1), inc(4), full(5), inc(6)], served: [at(1, 6), wholeOnly(1, 5)] }, { kind: 'incremental', whole: false }],
    ['the layer is kept but that holder cannot use it', { needsFull: false, lastSeq: 2, available: [layer(1), inc(2)], served: [wholeOnly(0, 0)] }, { kind: 'full', whole: true }],
    ['a holder that can use the layer needs a full point, the one without is in sync: the layer', { needsFull: false, lastSeq: 5, available: [inc(5)], served: [wholeOnly(1, 5), at(0, 0)] }, { kind: 'full', whole: false }],
    ['the driver needs a full point and one holder has no base: whole', { needsFull: true, lastSeq: 5, available: [inc(5)], served: [at(1, 5), wholeOnly(1, 5)] }, { kind: 'full', whole: true }]
  ] as const)('next point on a base image: %s', (_what, input, expected) => {
    expect(nextPoint({ ...input, epoch: 1, available: [...input.available], served: [...input.served] })).toEqual(expected)
  })

  it.each([
    ['a holder that can get the base takes the layer', [layer(1), inc(2)], false, [1, 2]],
    ['a holder that cannot: nothing here brings it up', [layer(1), inc(2)], true, undefined],
    ['a holder that cannot: the newest whole point, skipping the layer seed after it', [full(1), inc(2), layer(3, true), { seq: 4, kind: 'incremental', baseSeq: 2 }], true, [1, 2, 4]],
    ['a holder that can: the newest full point is the layer seed', [full(1), inc(2), layer(3, true)], false, [3]]
  ] as const)('points to send a new holder of a VM on a base: %s', (_what, available, whole, seqs) => {
    expect(pointsToSend({ epoch: 0, seq: 0 }, 1, [...available], whole)?.map((p) => p.seq)).toEqual(seqs)
  })

  it.each([
    ['one point: never the newest', [inc(4)], [at(1, 4)], 32, 0],
    ['all holders have 5: release up to 4 (5 is the next base)', [inc(3), inc(4), inc(5)], [at(1, 5), at(1, 5)], 32, 4],
    ['the slowest holder decides', [inc(3), inc(4), inc(5)], [at(1, 3), at(1, 5)], 32, 3],
    ['a holder of an older epoch holds everything back', [inc(3), inc(4), inc(5)], [at(0, 9), at(1, 5)], 32, 0],
    ['no holder served: keep', [inc(3), inc(4)], [], 32, 0],
    ['more than the cap: the oldest go anyway', [inc(1), inc(2), inc(3), inc(4), inc(5)], [at(1, 0)], 2, 3]
  ] as const)('release: %s', (_what, available, served, cap, upTo) => {
    expect(releasableUpTo([...available], [...served], 1, cap)).toBe(upTo)
  })

  it('holders go where the VM could run, never on the owner, a holder or a taken failure domain', () => {
    const req = holderRequest({ resources: { vcpus: 2, memoryBytes: 1, diskBytes: 5 }, accelerator: 'kvm', cpuModel: 'Skylake-Server', constraints: [{ key: 'tier', op: 'eq', value: 'gold' }], affinity: ['x'], antiAffinity: ['y'], seed: 's' }, {
      diskBytes: 10, wanted: 2, spreadBy: 'site', ownerId: 'o', holders: ['h1'], takenDomains: ['a', 'b', 'a'], avoid: ['bad'], seed: 'seed'
    })
    expect(req).toEqual({
      resources: { vcpus: 0, memoryBytes: 0, diskBytes: 10 },
      accelerator: 'kvm',
      cpuModel: 'Skylake-Server',
      constraints: [{ key: 'tier', op: 'eq', value: 'gold' }, { key: 'site', op: 'ne', value: 'a' }, { key: 'site', op: 'ne', value: 'b' }],
      policy: 'spread',
      exclude: ['o', 'h1', 'bad'],
      replicas: 2,
      spreadBy: 'site',
      seed: 'seed'
    })
  })
})
