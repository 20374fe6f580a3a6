import { describe, expect, it } from 'vitest'
import type { VmRow } from '../src/store/state-store.js'
import { VmDetails } from '../src/vm/vm-details.js'

const vm = { id: 'vm-1', name: 'web' } as VmRow

describe('VmDetails: what the parts add to vm show', () => {
  it('merges every part\'s fields for the VM, in the order the parts were added', () => {
    const details = new VmDetails()
    details.add('restarts', (v) => ({ restarts: v.id === 'vm-1' ? 2 : 0 }))
    details.add('migration', () => ({ migration: null }))
    details.add('lease', () => ({ lease: { role: 'owner', epoch: 3 } }))
    expect(details.of(vm)).toEqual({ restarts: 2, migration: null, lease: { role: 'owner', epoch: 3 } })
    expect(new VmDetails().of(vm)).toEqual({})
  })

  it('refuses a part added twice (two parts would answer for one field)', () => {
    const details = new VmDetails()
    details.add('replication', () => ({}))
    expect(() => { details.add('replication', () => ({})) }).toThrow(/added twice/)
  })
})
