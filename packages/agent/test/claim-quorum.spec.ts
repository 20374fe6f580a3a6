import { describe, expect, it } from 'vitest'
import { CLAIM_AUTHORITIES, keyAuthorities, majorityOf, tally, type Vote } from '../src/network/claim-quorum.js'

const G: Vote = { kind: 'granted' }
const T = (holder: string): Vote => ({ kind: 'taken', holder })
const S: Vote = { kind: 'silent', why: 'timeout' }

describe('claim quorum: a majority of the key\'s three deciders', () => {
  it.each([
    ['all three grant', [G, G, G], { outcome: 'granted' }],
    ['two grant, one holds it for another (that one lost the race)', [G, G, T('vm-b')], { outcome: 'granted' }],
    ['two grant, one silent', [G, S, G], { outcome: 'granted' }],
    ['one grant, two hold it for another', [T('vm-b'), G, T('vm-b')], { outcome: 'taken', holder: 'vm-b', contended: false }],
    ['a three-way race: nobody has a majority (contended: retry)', [G, T('vm-b'), T('vm-c')], { outcome: 'taken', holder: 'vm-b', contended: true }],
    ['the holder named by most votes', [T('vm-c'), T('vm-b'), T('vm-c')], { outcome: 'taken', holder: 'vm-c', contended: false }],
    ['one holds it, two silent: not known to be held by a majority', [T('vm-b'), S, S], { outcome: 'taken', holder: 'vm-b', contended: true }],
    ['one grant, two silent', [G, S, S], { outcome: 'unavailable', answered: 1, needed: 2 }],
    ['all silent', [S, S, S], { outcome: 'unavailable', answered: 0, needed: 2 }],
    ['a one-host cluster: its own grant is the majority', [G], { outcome: 'granted' }],
    ['a two-host cluster needs both', [G, S], { outcome: 'unavailable', answered: 1, needed: 2 }],
    ['no host known', [], { outcome: 'unavailable', answered: 0, needed: 1 }]
  ] as Array<[string, Vote[], unknown]>)('%s', (_, votes, want) => {
    expect(tally(votes)).toEqual(want)
  })

  it('majorities of one set always meet', () => {
    for (let n = 1; n <= CLAIM_AUTHORITIES; n++) expect(2 * majorityOf(n)).toBeGreaterThan(n)
  })

  it('the deciders do not depend on liveness: views that disagree about who is dead ask the same three', () => {
    const ids = Array.from({ length: 8 }, (_, i) => `host-${i}`)
    const alive = { hosts: () => ids.map((hostId) => ({ hostId, liveness: 'alive' })) }
    for (let k = 0; k < 50; k++) {
      const key = `ip:n1:10.0.0.${k}`
      const deciders = keyAuthorities(key, alive)
      const dead = new Set(deciders.slice(0, 2))
      const flapping = { hosts: () => ids.map((hostId) => ({ hostId, liveness: dead.has(hostId) ? 'dead' : 'alive' })) }
      expect(deciders).toHaveLength(3)
      expect(keyAuthorities(key, flapping)).toEqual(deciders)
    }
  })
})
