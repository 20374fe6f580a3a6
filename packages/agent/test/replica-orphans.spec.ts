/** A holder drops a replica nobody owns any more — but never the replica of a dead owner. */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ResourceLedger } from '../src/ledger/resource-ledger.js'
import { silentLogger } from '../src/log/logger.js'
import { ORPHAN_AFTER_MS, ReplicaKeeper } from '../src/replication/replica-keeper.js'
import type { ReplicaHolderService } from '../src/replica/replica-holder-service.js'
import { ReplicaRecords } from '../src/store/replica-records.js'
import { StateStore } from '../src/store/state-store.js'
import type { VmManager } from '../src/vm/vm-manager.js'
import { vmSpecFromWire } from '../src/vm/vm-spec-codec.js'

const MIB = 2 ** 20
let dir: string
let store: StateStore
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'mv-orphan-')); store = StateStore.open(dir) })
afterEach(async () => { store.close(); await rm(dir, { recursive: true, force: true }) })

interface FakeHost { hostId: string, liveness: 'alive' | 'suspect' | 'dead', self: boolean, advert: { hostname: string, vms: Array<{ id: string, role: 'owner' | 'replica' }> } }

function setUp (hosts: FakeHost[]): { keeper: ReplicaKeeper, records: ReplicaRecords, removed: string[] } {
  const records = new ReplicaRecords(store)
  const ledger = new ResourceLedger(store, { total: { vcpus: 8, memoryBytes: 8192 * MIB, diskBytes: 100_000 * MIB }, hostReserved: { vcpus: 0, memoryBytes: 0, diskBytes: 0 }, overcommit: { cpu: 1, memory: 1, disk: 1 } })
  const removed: string[] = []
  const service = { removeReplica: async (id: string) => { removed.push(id) } } as unknown as ReplicaHolderService
  const view = { get: (id: string) => hosts.find((h) => h.hostId === id), hosts: () => hosts }
  const keeper = new ReplicaKeeper({ selfId: 'me', store, records, ledger, vms: { get: () => undefined } as unknown as VmManager, hypervisor: {} as never, preparation: {} as never, view: view as never, log: silentLogger }, service)
  return { keeper, records, removed }
}

function hold (records: ReplicaRecords, vmId: string, owner: string, at: number): void {
  records.putHeld({ vmId, name: vmId, owner, epoch: 1, spec: vmSpecFromWire({ name: vmId }), holders: ['me'], diskBytes: 16 * MIB, createdAt: at, updatedAt: at })
}

describe('orphaned replicas', () => {
  it('dropped only after no live host has owned the VM, its owner alive, for ORPHAN_AFTER_MS without a break', async () => {
    const owner: FakeHost = { hostId: 'o', liveness: 'alive', self: false, advert: { hostname: 'o', vms: [{ id: 'kept', role: 'owner' }] } }
    const { keeper, records, removed } = setUp([owner])
    hold(records, 'kept', 'o', 0)
    hold(records, 'gone', 'o', 0)
    const t0 = 10 * ORPHAN_AFTER_MS
    expect(await keeper.sweepOrphans(t0)).toEqual([])
    expect(await keeper.sweepOrphans(t0 + ORPHAN_AFTER_MS - 1)).toEqual([])
    expect(await keeper.sweepOrphans(t0 + ORPHAN_AFTER_MS)).toEqual(['gone'])
    expect(removed).toEqual(['gone'])
    expect(records.listHeld().map((h) => h.vmId)).toEqual(['kept'])
  })

  it('a break (the VM seen owned again) restarts the count; a dead or unknown owner\'s replica is kept (failover needs it)', async () => {
    const owner: FakeHost = { hostId: 'o', liveness: 'alive', self: false, advert: { hostname: 'o', vms: [] } }
    const hosts = [owner]
    const { keeper, records } = setUp(hosts)
    hold(records, 'vm1', 'o', 0)
    hold(records, 'vm2', 'dead-owner', 0)
    const t0 = 10 * ORPHAN_AFTER_MS
    await keeper.sweepOrphans(t0)
    owner.advert.vms = [{ id: 'vm1', role: 'owner' }]
    await keeper.sweepOrphans(t0 + 1000)
    owner.advert.vms = []
    expect(await keeper.sweepOrphans(t0 + ORPHAN_AFTER_MS + 1000)).toEqual([])
    expect(await keeper.sweepOrphans(t0 + 2 * ORPHAN_AFTER_MS + 1000)).toEqual(['vm1'])
    hosts.push({ hostId: 'dead-owner', liveness: 'dead', self: false, advert: { hostname: 'd', vms: [] } })
    expect(await keeper.sweepOrphans(t0 + 10 * ORPHAN_AFTER_MS)).toEqual([])
    expect(records.listHeld().map((h) => h.vmId)).toEqual(['vm2'])
  })
})
