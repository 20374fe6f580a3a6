import { describe, expect, it } from 'vitest'
import { StateStore, type VmRow } from '../src/store/state-store.js'
import { VmRowCache } from '../src/store/vm-row-cache.js'
import { vmSpecFromWire } from '../src/vm/vm-spec-codec.js'

function vm (id: string, createdAt: number): VmRow {
  return {
    id, name: id, group: '', spec: vmSpecFromWire({ name: id }), placement: null, owner: 'host-a', epoch: 1, state: 'running', desired: 'running',
    resources: { vcpus: 1, memoryBytes: 2 ** 20, diskBytes: 0 }, idempotencyKey: null, createdAt, updatedAt: createdAt, startedAt: null, lastError: null, lastMigration: null
  }
}

// The VM rows are read from memory between writes: what a reader sees must stay what SQLite holds.
describe('the state store\'s VM rows, kept in memory between writes', () => {
  it('follows every insert, update and delete, in listing order', () => {
    const store = new StateStore(':memory:')
    store.insertVm(vm('b', 2))
    store.insertVm(vm('a', 1))
    expect(store.listVms().map((v) => v.id)).toEqual(['a', 'b'])
    store.updateVm('a', { state: 'stopped', epoch: 4 }, 10)
    expect(store.getVm('a')).toMatchObject({ state: 'stopped', epoch: 4, updatedAt: 10 })
    store.insertVm(vm('c', 3))
    store.deleteVm('b')
    expect(store.listVms().map((v) => v.id)).toEqual(['a', 'c'])
    expect(store.getVm('b')).toBeUndefined()
    store.close()
  })

  it('never keeps what a rolled-back transaction wrote, even when it was read inside it', () => {
    const store = new StateStore(':memory:')
    store.insertVm(vm('a', 1))
    expect(store.getVm('a')?.state).toBe('running')
    expect(() => store.transaction(() => {
      store.updateVm('a', { state: 'crashed' }, 5)
      store.insertVm(vm('ghost', 2))
      expect(store.getVm('a')?.state).toBe('crashed')
      expect(store.listVms()).toHaveLength(2)
      throw new Error('roll back')
    })).toThrow('roll back')
    expect(store.getVm('a')?.state).toBe('running')
    expect(store.listVms().map((v) => v.id)).toEqual(['a'])
    store.close()
  })

  it('hands out copies: a caller changing a row does not change the next read', () => {
    const store = new StateStore(':memory:')
    store.insertVm(vm('a', 1))
    const row = store.listVms()[0] as VmRow
    row.state = 'crashed'
    row.resources.vcpus = 99
    const got = store.getVm('a') as VmRow
    got.epoch = 42
    expect(store.getVm('a')).toMatchObject({ state: 'running', epoch: 1, resources: { vcpus: 1 } })
    store.close()
  })

  it('stays what SQLite holds through writes in and out of (nested, rolled-back) transactions', () => {
    const store = new StateStore(':memory:')
    const truth = (): string[] => (store.db.prepare('SELECT id, state FROM vms ORDER BY created_at, id').all() as Array<{ id: string, state: string }>).map((r) => `${r.id}:${r.state}`)
    const seen = (): string[] => store.listVms().map((v) => `${v.id}:${v.state}`)
    store.insertVm(vm('m', 5))
    expect(seen()).toEqual(truth()) // read once: from here on, writes are followed
    store.insertVm(vm('z', 9)) // after the last: appended
    store.insertVm(vm('b', 1)) // before it: everything is read again
    store.insertVm(vm('y', 9)) // same time as z, sorts before it by id
    expect(seen()).toEqual(truth())
    store.transaction(() => {
      store.updateVm('m', { state: 'stopped' }, 20)
      expect(() => store.transaction(() => { store.deleteVm('b'); throw new Error('inner') })).toThrow('inner')
      store.insertVm(vm('zz', 10))
    })
    expect(seen()).toEqual(truth())
    expect(seen()).toEqual(['b:running', 'm:stopped', 'y:running', 'z:running', 'zz:running'])
    store.deleteVm('zz') // the last one goes
    store.insertVm(vm('q', 11))
    store.durable(() => { store.updateVm('q', { state: 'crashed' }, 30) })
    expect(seen()).toEqual(truth())
    store.close()
  })
})

describe('VM row cache', () => {
  it('reads one row per committed write, not all of them', () => {
    const db = new Map<string, VmRow>([['a', vm('a', 1)], ['b', vm('b', 2)]])
    let allReads = 0
    let oneReads = 0
    const cache = new VmRowCache({
      all: () => { allReads++; return [...db.values()].sort((x, y) => x.createdAt - y.createdAt) },
      one: (id) => { oneReads++; return db.get(id) }
    })
    cache.written('a', false) // nothing cached yet: nothing to read
    expect(oneReads).toBe(0)
    expect([...cache.get().keys()]).toEqual(['a', 'b'])
    for (let i = 3; i < 50; i++) {
      db.set(`v${i}`, vm(`v${i}`, i))
      cache.written(`v${i}`, false)
      db.set('a', { ...vm('a', 1), epoch: i })
      cache.written('a', true) // inside a transaction: read when it commits
      cache.committed()
    }
    expect(allReads).toBe(1)
    expect(oneReads).toBe(2 * 47)
    expect(cache.get().size).toBe(49)
    expect(cache.get().get('a')?.epoch).toBe(49)
    cache.written('a', true)
    cache.forget() // rolled back
    expect(cache.get().size).toBe(49)
    expect(allReads).toBe(2)
  })
})
