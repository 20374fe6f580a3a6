import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { decideGroupPolicy, type GroupPolicy } from '../src/ledger/group-policy.js'
import { ResourceLedger } from '../src/ledger/resource-ledger.js'
import { StateStore } from '../src/store/state-store.js'

const MIB = 2 ** 20
const policy = (p: Partial<GroupPolicy>): GroupPolicy => ({ group: '', affinity: [], antiAffinity: [], ...p })

describe('decideGroupPolicy: a host\'s own word on a new VM\'s group rules', () => {
  it.each([
    ['no rules', policy({ group: 'web' }), {}, {}, 'ok'],
    ['anti-affinity, group absent', policy({ antiAffinity: ['web'] }), { db: 1 }, { cache: 1 }, 'ok'],
    ['anti-affinity, a VM of it runs here', policy({ antiAffinity: ['web'] }), { web: 1 }, {}, 'anti-affinity'],
    ['anti-affinity, a reservation holds it', policy({ antiAffinity: ['web'] }), {}, { web: 1 }, 'anti-affinity-reserved'],
    ['anti-affinity, a VM and a reservation', policy({ antiAffinity: ['web'] }), { web: 1 }, { web: 1 }, 'anti-affinity'],
    ['anti-affinity, zero counts are absence', policy({ antiAffinity: ['web'] }), { web: 0 }, { web: 0 }, 'ok'],
    ['anti-affinity, prototype names are not groups', policy({ antiAffinity: ['constructor', 'toString'] }), {}, {}, 'ok'],
    ['affinity, a VM of it runs here', policy({ affinity: ['db'] }), { db: 2 }, {}, 'ok'],
    ['affinity, only reserved (may never come)', policy({ affinity: ['db'] }), {}, { db: 1 }, 'affinity'],
    ['affinity, one of two missing', policy({ affinity: ['db', 'cache'] }), { db: 1 }, {}, 'affinity'],
    ['anti-affinity is checked before affinity', policy({ affinity: ['db'], antiAffinity: ['web'] }), { web: 1 }, {}, 'anti-affinity']
  ] as const)('%s', (_name, p, vms, reserved, expected) => {
    const d = decideGroupPolicy(p, vms, reserved)
    expect(d.ok ? 'ok' : d.rule).toBe(expected)
  })

  it('says what it found and where', () => {
    expect(decideGroupPolicy(policy({ antiAffinity: ['web'] }), {}, { web: 2 })).toEqual({ ok: false, rule: 'anti-affinity-reserved', group: 'web', message: 'anti-affinity: this host already holds 2 reservation(s) of group web' })
  })
})

describe('ResourceLedger.reserve with a group policy', () => {
  let dir: string
  let store: StateStore
  let now: number
  let ledger: ResourceLedger
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mv-group-'))
    store = StateStore.open(dir)
    now = 1_000_000
    ledger = new ResourceLedger(store, { total: { vcpus: 8, memoryBytes: 8192 * MIB, diskBytes: 100_000 * MIB }, hostReserved: { vcpus: 0, memoryBytes: 0, diskBytes: 0 }, overcommit: { cpu: 1, memory: 1, disk: 1 } }, () => now)
  })
  afterEach(async () => { store.close(); await rm(dir, { recursive: true, force: true }) })

  const want = { vcpus: 1, memoryBytes: 128 * MIB, diskBytes: 0 }
  const member = (requestId: string): Parameters<ResourceLedger['reserve']>[0] => ({ requestId, brokerId: 'b', resources: want, ttlMs: 1000, policy: policy({ group: 'ha', antiAffinity: ['ha'] }) })

  it('a second member is refused while the first one\'s reservation lives, and taken once it expires', () => {
    expect(ledger.reserve(member('a/1')).ok).toBe(true)
    expect(store.findReservationByRequest('a/1')?.group).toBe('ha')
    const second = ledger.reserve(member('b/1'))
    expect(second).toMatchObject({ ok: false, rule: 'anti-affinity-reserved' })
    // Nothing was held for the refused one.
    expect(ledger.capacity().reservations).toEqual(want)
    // The same request asked again gets its reservation back (idempotent), not a refusal.
    expect(ledger.reserve(member('a/1')).ok).toBe(true)
    now += 1001
    expect(ledger.reserve(member('b/2')).ok).toBe(true)
  })

  it('a plain VM (no rules) is not refused by a group\'s reservation', () => {
    expect(ledger.reserve(member('a/1')).ok).toBe(true)
    expect(ledger.reserve({ requestId: 'plain/1', brokerId: 'b', resources: want, ttlMs: 1000 }).ok).toBe(true)
    expect(ledger.reserve({ requestId: 'other/1', brokerId: 'b', resources: want, ttlMs: 1000, policy: policy({ group: 'ha' }) }).ok).toBe(true)
  })
})
