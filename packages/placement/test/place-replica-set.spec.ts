import { describe, expect, it } from 'vitest'
import { GIB, placeReplicaSet, type HostSnapshot } from '../src/index.js'
import { host, hostUsing, vm } from './fixtures.js'

const inZone = (id: string, zone: string | undefined, usedGib = 0): HostSnapshot =>
  hostUsing(id, { vcpus: 0, memoryBytes: usedGib * GIB, diskBytes: 0 }, { labels: zone === undefined ? {} : { zone } })

describe('placeReplicaSet', () => {
  const view = [inZone('a1', 'a', 40), inZone('a2', 'a', 50), inZone('b1', 'b', 10), inZone('c1', 'c', 20), inZone('x', undefined, 55)]

  it('takes the best host of each domain, best domains first', () => {
    const set = placeReplicaSet(vm({ replicas: 3, spreadBy: 'zone' }), view)
    expect(set.hosts.map((h) => h.hostId)).toEqual(['a2', 'c1', 'b1'])
    expect(set.domains).toEqual(['a', 'c', 'b'])
    expect(set.complete).toBe(true)
    expect(set.summary).toBe('chose a2, c1, b1 for 3 replicas in distinct zone domains')
  })

  it('rejects hosts that cannot say which domain they are in', () => {
    const set = placeReplicaSet(vm({ replicas: 1, spreadBy: 'zone' }), view)
    expect(set.rejected).toContainEqual({ hostId: 'x', filter: 'FAILURE_DOMAIN', reason: 'has no zone label', detail: 'zone' })
    expect(set.hosts.map((h) => h.hostId)).toEqual(['a2'])
  })

  it('says when the view has fewer domains than asked', () => {
    const set = placeReplicaSet(vm({ replicas: 4, spreadBy: 'zone' }), view)
    expect(set.complete).toBe(false)
    expect(set.hosts).toHaveLength(3)
    expect(set.summary).toBe('only 3 of 4 replicas placed: the view has only 3 zone domains; 4 of 5 hosts fit; 1 has no zone label')
  })

  it('says when domains exist but lack a fitting host', () => {
    const crowded = [...view.slice(0, 4), inZone('d1', 'd', 62)]
    const set = placeReplicaSet(vm({ replicas: 4, spreadBy: 'zone' }), crowded)
    expect(set.summary).toBe('only 3 of 4 replicas placed: 4 zone domains exist but only 3 have a host that fits; ' +
      '4 of 5 hosts fit; 1 lacks memory (need 4096 MiB, most free 2048 MiB)')
  })

  it('avoids a domain through a label constraint (the owner keeps its own zone for itself)', () => {
    const set = placeReplicaSet(vm({ replicas: 2, spreadBy: 'zone', constraints: [{ key: 'zone', op: 'ne', value: 'a' }] }), view)
    expect(set.domains).toEqual(['c', 'b'])
  })

  it('uses distinct hosts when no spread key is given', () => {
    const set = placeReplicaSet(vm({ replicas: 3 }), [host('h1'), host('h2')])
    expect(set.hosts.map((h) => h.hostId).sort()).toEqual(['h1', 'h2'])
    expect(set.summary).toMatch(/^only 2 of 3 replicas placed: the view has only 2 hosts/)
  })
})
