import { describe, expect, it } from 'vitest'
import { chooseWitness } from '../src/failover/witness.js'

const host = (id: string, domain?: string, alive = true): { id: string, alive: boolean, domain: string | undefined } => ({ id, alive, domain })

describe('chooseWitness', () => {
  it('an odd group (owner + 2 holders, or the owner alone) needs none', () => {
    expect(chooseWitness({ vmId: 'v', owner: 'o', holders: ['a', 'b'], hosts: [host('w')], takenDomains: [] })).toBeUndefined()
    expect(chooseWitness({ vmId: 'v', owner: 'o', holders: [], hosts: [host('w')], takenDomains: [] })).toBeUndefined()
  })

  it('owner + 1 holder: a live host outside the group, in a domain of its own when there is one', () => {
    const hosts = [host('o', 'a'), host('h', 'b'), host('x', 'a'), host('y', 'c'), host('z', 'c', false)]
    expect(chooseWitness({ vmId: 'v', owner: 'o', holders: ['h'], hosts, takenDomains: ['a', 'b'] })).toBe('y')
  })

  it('falls back to any live non-member when every domain is taken, and to none when there is none', () => {
    const hosts = [host('o', 'a'), host('h', 'b'), host('x', 'a')]
    expect(chooseWitness({ vmId: 'v', owner: 'o', holders: ['h'], hosts, takenDomains: ['a', 'b'] })).toBe('x')
    expect(chooseWitness({ vmId: 'v', owner: 'o', holders: ['h'], hosts: [host('o'), host('h')], takenDomains: [] })).toBeUndefined()
  })

  it('every host computes the same witness, and it moves only when it must', () => {
    const hosts = ['p', 'q', 'r', 's', 't'].map((id) => host(id))
    const first = chooseWitness({ vmId: 'vm-1', owner: 'o', holders: ['h'], hosts, takenDomains: [] })
    expect(chooseWitness({ vmId: 'vm-1', owner: 'o', holders: ['h'], hosts: [...hosts].reverse(), takenDomains: [] })).toBe(first)
    // Another host leaving does not move it.
    const others = hosts.filter((h) => h.id !== first)
    expect(chooseWitness({ vmId: 'vm-1', owner: 'o', holders: ['h'], hosts: [...others.slice(1), host(first as string)], takenDomains: [] })).toBe(first)
    // The witness dying does.
    expect(chooseWitness({ vmId: 'vm-1', owner: 'o', holders: ['h'], hosts: others, takenDomains: [] })).not.toBe(first)
  })
})
