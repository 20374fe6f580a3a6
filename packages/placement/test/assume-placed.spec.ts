import { describe, expect, it } from 'vitest'
import { GIB, assumePlaced, freeCapacity } from '../src/index.js'
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
