import { describe, expect, it } from 'vitest'
import { holderRequest, holderState, nextPointKind, pointIntervalMs, releasableUpTo } from '../src/replication/replica-plan.js'
import type { AvailablePoint } from '../src/replica/position.js'

const inc = (seq: number): AvailablePoint => ({ seq, kind: 'incremental', baseSeq: seq - 1 })
const full = (seq: number): AvailablePoint => ({ seq, kind: 'full', baseSeq: 0 })
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
