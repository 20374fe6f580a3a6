import { describe, expect, it } from 'vitest'
import { StateStore, type VmRow } from '../src/store/state-store.js'
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
})
