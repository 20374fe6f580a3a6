import type { VmSummary } from '@meshvirt/mesh'
import { describe, expect, it } from 'vitest'
import { sightMembers, type SeenHost } from '../src/vm-group/group-members.js'
import { GroupOwnership } from '../src/vm-group/group-ownership.js'
import { preferredGroup, type VmGroupRecord } from '../src/vm-group/group-record.js'
import { GroupReconciler, memberSpec } from '../src/vm-group/group-reconciler.js'
import { silentLogger } from '../src/log/logger.js'
import type { ClaimResult } from '../src/network/cluster-claims.js'
import { pb } from '@meshvirt/proto'

const record = (over: Partial<VmGroupRecord> = {}): VmGroupRecord => ({
  name: 'web', id: 'g1', count: 3, template: new Uint8Array(), revision: 1, updatedAtMs: 100, updatedBy: 'a', createdAtMs: 100, deletedAtMs: 0, ...over
})

describe('preferredGroup: every host keeps the same record, whatever order it heard them in', () => {
  it.each([
    ['a higher revision wins', record({ revision: 2, count: 5 }), record({ revision: 1 }), 5],
    ['same revision: the later change', record({ revision: 2, updatedAtMs: 300, count: 7 }), record({ revision: 2, updatedAtMs: 200, count: 4 }), 7],
    ['same revision and time: the larger host id', record({ revision: 2, updatedBy: 'b', count: 8 }), record({ revision: 2, updatedBy: 'a', count: 9 }), 8],
    ['a deletion wins over any revision', record({ deletedAtMs: 500, count: 1 }), record({ revision: 9, count: 2 }), 1],
    ['two creations raced: the first created', record({ id: 'g2', createdAtMs: 50, count: 6 }), record({ id: 'g1', createdAtMs: 60 }), 6],
    ['a name reused after a deletion: the new group', record({ id: 'g2', createdAtMs: 900, count: 2 }), record({ id: 'g1', deletedAtMs: 800 }), 2]
  ] as const)('%s', (_name, a, b, count) => {
    expect(preferredGroup(a, b).count).toBe(count)
    expect(preferredGroup(b, a).count).toBe(count)
  })
})

const vm = (name: string, over: Partial<VmSummary> = {}): VmSummary => ({
  id: `id-${name}`, name, epoch: 1, role: 'owner', state: 'running', resources: { vcpus: 1, memoryBytes: 1, diskBytes: 0 }, owner: '', group: 'web', nics: [], ...over
})
const host = (hostId: string, liveness: string, vms: VmSummary[]): SeenHost => ({ hostId, liveness, advert: { hostname: hostId, vms } })

describe('sightMembers: a group\'s members in the gossip', () => {
  it('counts VMs of the placement group named NAME-N, each once, at its newest epoch', () => {
    const seen = sightMembers('web', [
      host('h1', 'alive', [vm('web-1'), vm('web-2', { epoch: 1, state: 'migrating' }), vm('web-x'), vm('api-1', { group: 'api' }), vm('web-9', { group: '' })]),
      host('h2', 'alive', [vm('web-2', { epoch: 2 })])
    ])
    expect(seen.map((s) => [s.vmName, s.state, s.hostId])).toEqual([['web-1', 'running', 'h1'], ['web-2', 'running', 'h2']])
  })

  it('a dead host\'s member is lost, or recovering when a live host holds a replica; history once re-created', () => {
    const seen = sightMembers('web', [
      host('h1', 'dead', [vm('web-1'), vm('web-2'), vm('web-3')]),
      host('h2', 'alive', [vm('web-2', { role: 'replica', group: '' }), vm('web-3', { id: 'id-web-3-again' })])
    ])
    expect(seen.map((s) => [s.vmName, s.state, s.hostId])).toEqual([['web-1', 'lost', 'h1'], ['web-2', 'recovering', 'h1'], ['web-3', 'running', 'h2']])
  })
})

describe('GroupOwnership: a lease held from the send instant, renewed, given up', () => {
  const setup = (answers: Array<ClaimResult | Error>): { own: GroupOwnership, clock: { t: number }, claims: string[], released: string[] } => {
    const clock = { t: 0 }
    const claims: string[] = []
    const released: string[] = []
    const own = new GroupOwnership({
      selfId: 'me',
      now: () => clock.t,
      timing: { ttlMs: 8000, renewEveryMs: 2000, marginMs: 1000 },
      claims: {
        claim: async (key) => {
          claims.push(key)
          const a = answers.shift() ?? { granted: true, at: [] }
          if (a instanceof Error) throw a
          return a
        },
        release: async (key) => { released.push(key) }
      }
    })
    return { own, clock, claims, released }
  }
  const settle = async (): Promise<void> => { for (let i = 0; i < 5; i++) await Promise.resolve() }

  it('claims as candidate, holds until TTL − margin after the send, renews when due, releases when unwanted', async () => {
    const { own, clock, claims, released } = setup([])
    own.tick([{ groupId: 'g1', claim: false }])
    expect(claims).toEqual([])
    own.tick([{ groupId: 'g1', claim: true }])
    await settle()
    expect(own.holds('g1')).toBe(true)
    expect(own.owned()).toEqual(['g1'])
    clock.t = 1000
    own.tick([{ groupId: 'g1', claim: false }])
    expect(claims).toHaveLength(1)
    clock.t = 2000
    own.tick([{ groupId: 'g1', claim: false }])
    await settle()
    expect(claims).toHaveLength(2)
    // Renewed at 2000: held until 2000 + 8000 − 1000.
    clock.t = 8999
    expect(own.holds('g1')).toBe(true)
    own.tick([])
    await settle()
    expect(own.holds('g1')).toBe(false)
    expect(released).toEqual(['group-owner:g1'])
  })

  it('a failed renewal keeps the grant until it runs out; a refusal ends it at once', async () => {
    const { own, clock } = setup([{ granted: true, at: [] }, new Error('too few deciders'), { granted: false, holder: 'other', contended: false }])
    own.tick([{ groupId: 'g1', claim: true }])
    await settle()
    clock.t = 2000
    own.tick([{ groupId: 'g1', claim: true }])
    await settle()
    expect(own.holds('g1')).toBe(true)
    clock.t = 6999
    expect(own.holds('g1')).toBe(true)
    clock.t = 7000
    expect(own.holds('g1')).toBe(false)
    own.tick([{ groupId: 'g1', claim: true }])
    await settle()
    expect(own.holds('g1')).toBe(false)
  })
})

describe('memberSpec: a member from the template', () => {
  it('names it, puts it in the group, spreads it unless the template says otherwise', () => {
    const template = pb.VmSpec.encode({ resources: { vcpus: 2, memoryBytes: 2 ** 28 }, boot: { kernel: '/k' }, softAntiAffinity: ['db'] }).finish()
    const spec = memberSpec(record({ template }), 'web-3')
    expect(spec).toMatchObject({ name: 'web-3', group: 'web', softAntiAffinity: ['db', 'web'], policy: pb.PlacementPolicy.PLACEMENT_POLICY_SPREAD, resources: { vcpus: 2 } })
    const strict = pb.VmSpec.encode({ boot: { kernel: '/k' }, antiAffinity: ['web'], policy: pb.PlacementPolicy.PLACEMENT_POLICY_BINPACK }).finish()
    expect(memberSpec(record({ template: strict }), 'web-1')).toMatchObject({ softAntiAffinity: [], antiAffinity: ['web'], policy: pb.PlacementPolicy.PLACEMENT_POLICY_BINPACK })
  })
})

describe('GroupReconciler: a round acts through the control API', () => {
  it('a member created moments ago and lost with its host is forgotten and created again at once', async () => {
    const calls: string[] = []
    let hosts: SeenHost[] = [host('h1', 'alive', []), host('h2', 'alive', [])]
    const template = pb.VmSpec.encode({ resources: { vcpus: 1, memoryBytes: 2 ** 27 }, boot: { kernel: '/k' } }).finish()
    const g = record({ count: 1, template })
    const reconciler = new GroupReconciler({
      hosts: () => hosts,
      holds: () => true,
      log: silentLogger,
      control: async (req) => {
        if (req.createVm != null) {
          calls.push(`create ${req.createVm.spec?.name ?? ''}`)
          // The gossip shows it on h1 (then, the second time, on h2).
          const on = calls.filter((c) => c.startsWith('create')).length === 1 ? 'h1' : 'h2'
          hosts = hosts.map((h) => h.hostId === on ? host(on, h.liveness, [vm('web-1', { id: `id-${calls.length}` })]) : h)
        }
        if (req.deleteVm != null) calls.push(`forget ${req.deleteVm.vm?.id ?? ''} force=${String(req.deleteVm.force)}`)
        return {}
      }
    })
    expect((await reconciler.reconcile(g)).created).toEqual(['web-1'])
    // h1 dies a second later, well within the time a fresh create counts as present.
    hosts = hosts.map((h) => h.hostId === 'h1' ? { ...h, liveness: 'dead' } : h)
    const round = await reconciler.reconcile(g)
    expect(round).toMatchObject({ forgotten: ['web-1'], created: ['web-1'] })
    expect(calls).toEqual(['create web-1', 'forget id-1 force=true', 'create web-1'])
    // The forgotten copy is history: nothing more to do.
    expect(await reconciler.reconcile(g)).toMatchObject({ forgotten: [], created: [], deleted: [] })
  })
})
