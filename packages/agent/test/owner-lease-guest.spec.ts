import { describe, expect, it } from 'vitest'
import { leaseTiming } from '../src/lease/lease-timing.js'
import { OwnerLease } from '../src/lease/owner-lease.js'
import type { LeaseEffect } from '../src/lease/types.js'

const timing = leaseTiming()

/** An owner of a group of three whose first renewal round one member granted: the lease is held. */
function heldOwner (guest: 'running' | 'stopped' | 'fenced'): OwnerLease {
  const lease = new OwnerLease({ selfId: 'a', vmId: 'v', epoch: 1, members: ['a', 'b', 'c'], timing, now: 0, guest })
  lease.tick(0)
  lease.handle('b', { type: 'granted', vmId: 'v', epoch: 1, round: 1 }, 1)
  return lease
}
const kinds = (effects: LeaseEffect[]): string[] => effects.map((e) => e.type).filter((t) => t === 'resume' || t === 'fence')

describe('OwnerLease: the guest as the agent reports it', () => {
  it('a stopped guest the operator starts again (it waits, down, for the lease) is resumed while the lease holds', () => {
    const lease = heldOwner('stopped')
    expect(lease.state().running).toBe(false)
    lease.observe('down')
    expect(kinds(lease.tick(2))).toEqual(['resume'])
    expect(lease.state().running).toBe(true)
  })

  it('a running guest that dies is resumed; one stopped on purpose stays stopped', () => {
    const died = heldOwner('running')
    died.observe('down')
    expect(kinds(died.tick(2))).toEqual(['resume'])
    const stopped = heldOwner('running')
    stopped.observe('stopped')
    expect(kinds(stopped.tick(2))).toEqual([])
    expect(stopped.state().running).toBe(false)
  })
})
