import { describe, expect, it } from 'vitest'
import { GIB, assumePlaced, assumeRemoved, freeCapacity, placeVm } from '../src/index.js'
import { host, vm } from './fixtures.js'

describe('assumePlaced', () => {
  it('allocates the VM and counts its group, leaving the input untouched', () => {
    const before = host('h', { vmGroups: { web: 1 } })
    const after = assumePlaced(before, vm({ group: 'web', resources: { vcpus: 2, memoryBytes: 4 * GIB, diskBytes: 0 } }))
    expect(freeCapacity(after.capacity)).toEqual({ vcpus: 14, memoryBytes: 60 * GIB, diskBytes: 1024 * GIB })
    expect(after.vmGroups).toEqual({ web: 2 })
    expect(before.vmGroups).toEqual({ web: 1 })
    expect(freeCapacity(before.capacity)).toEqual({ vcpus: 16, memoryBytes: 64 * GIB, diskBytes: 1024 * GIB })
  })

  it('leaves the groups alone for a VM without one', () => {
    const before = host('h')
    expect(assumePlaced(before, vm()).vmGroups).toBe(before.vmGroups)
  })
})

describe('assumeRemoved', () => {
  const db = vm({ group: 'db', antiAffinity: ['db'], affinityDomain: 'site', resources: { vcpus: 2, memoryBytes: 4 * GIB, diskBytes: 0 } })

  it('releases the VM and uncounts its group, leaving the input untouched', () => {
    const before = assumePlaced(host('h', { vmGroups: { db: 1, web: 3 } }), db)
    const after = assumeRemoved(before, db)
    expect(after.vmGroups).toEqual({ db: 1, web: 3 })
    expect(freeCapacity(after.capacity)).toEqual({ vcpus: 16, memoryBytes: 64 * GIB, diskBytes: 1024 * GIB })
    expect(assumeRemoved(after, db).vmGroups).toEqual({ web: 3 })
    expect(before.vmGroups).toEqual({ db: 2, web: 3 })
  })

  it('never goes below nothing', () => {
    const after = assumeRemoved(host('h'), db)
    expect(after.vmGroups).toEqual({})
    expect(freeCapacity(after.capacity)).toEqual({ vcpus: 16, memoryBytes: 64 * GIB, diskBytes: 1024 * GIB })
  })

  it('lets a VM move within its own domain: it is not in its own way', () => {
    // s1 runs the only db VM, and s2 shares its site; s3 is elsewhere but runs another db.
    const view = [
      host('s1', { labels: { site: 'dc1' }, vmGroups: { db: 1 } }),
      host('s2', { labels: { site: 'dc1' } }),
      host('s3', { labels: { site: 'dc2' }, vmGroups: { db: 1 } })
    ]
    const moving = { ...db, exclude: ['s1'] }
    expect(placeVm(moving, view).chosen).toBeUndefined()
    const without = view.map((h) => h.id === 's1' ? assumeRemoved(h, db) : h)
    expect(placeVm(moving, without).chosen?.hostId).toBe('s2')
  })
})
