/**
 * Issue 22, finding 2 and 5 (leases): a lease message counts only from a host that may hold the role,
 * and a peer's say-so creates no state for a VM this host does not know. Pure: the LeaseTable alone.
 */
import { describe, expect, it } from 'vitest'
import { decodeLeaseRequest, encodeLeaseRequest } from '../src/lease/lease-codec.js'
import { LeaseTable } from '../src/lease/lease-table.js'
import { leaseTiming } from '../src/lease/lease-timing.js'
import type { LeaseEffect, LeaseOutcome, PersistedLease, Renew } from '../src/lease/types.js'

const t = leaseTiming()
const VM = 'vm-guard-1'
const [O, H, W, X, D] = ['12D3KooWowner', '12D3KooWholder', '12D3KooWwitness', '12D3KooWintruder', '12D3KooWdestination']
const GROUP = [O as string, H as string, W as string]

function table (self: string, persisted: PersistedLease[] = [], vouch?: (vmId: string, from: string) => boolean): LeaseTable {
  return new LeaseTable({ selfId: self, timing: t, now: 0, persisted, restarted: false, random: () => 0.5, position: () => ({ epoch: 1, seq: 1, takenAt: 1 }), ...(vouch !== undefined ? { vouch } : {}) })
}

const renew = (from: string, epoch: number, round = 1, extra: Partial<Renew> = {}): Renew =>
  ({ type: 'renew', vmId: VM, epoch, members: [from, ...GROUP.filter((m) => m !== from)], leaseMs: t.leaseMs, round, ...extra })

const persists = (effects: LeaseEffect[]): number => effects.filter((e) => e.type === 'persist').length
const reason = (out: LeaseOutcome): string => out.reply?.type === 'refused' ? out.reply.reason : out.reply?.type ?? 'none'

/** A holder that knows O as owner at epoch 1 and granted it at `at`. */
function holderGranted (at: number): LeaseTable {
  const h = table(H as string, [{ vmId: VM, epoch: 1, owner: O as string, elected: true, members: GROUP }])
  expect(h.handle(O as string, renew(O as string, 1), at).reply?.type).toBe('granted')
  return h
}

describe('lease messages only from who may hold the role (issue 22)', () => {
  it.each([
    // [case, sender, epoch, ms after the last grant to O, expected answer]
    ['forged renewal at epoch + 1 from a non-member, grant live', X, 2, 100, 'not-member'],
    ['forged renewal at epoch + 1 from a non-member, grant long lapsed', X, 2, 10 * t.leaseMs, 'not-member'],
    ['forged renewal at epoch + 5 from a non-member', X, 6, 100, 'not-member'],
    ['a member claims epoch + 1 while the owner still renews', W, 2, 100, 'lease-held'],
    ['a member claims epoch + 1 just before the grant lapses by the margin', W, 2, t.leaseMs + t.electionMarginMs - 1, 'lease-held'],
    ['a member renews at epoch + 1 once the grant lapsed by the margin (it would vote)', W, 2, t.leaseMs + t.electionMarginMs, 'granted'],
    ['another member at the same epoch as the known owner', W, 1, 100, 'promised'],
    ['the known owner at its epoch', O, 1, 100, 'granted']
  ])('%s → %s', (_case, from, epoch, after, expected) => {
    const h = holderGranted(1000)
    const out = h.handle(from as string, renew(from as string, epoch, 2), 1000 + after)
    expect(reason(out)).toBe(expected)
    if (expected !== 'granted') {
      expect(persists(out.effects)).toBe(0)
      expect(h.state(VM)).toMatchObject({ epoch: 1, owner: O })
    }
  })

  it('a renewal naming another host as owner than its sender is invalid', () => {
    const h = holderGranted(1000)
    expect(reason(h.handle(X as string, { ...renew(O as string, 2), members: GROUP }, 1100))).toBe('invalid')
  })

  it('a hand-over by the known owner lets the destination (outside the group) renew at epoch + 1, nobody else', () => {
    const h = holderGranted(1000)
    expect(reason(h.handle(O as string, renew(O as string, 1, 2, { handover: { to: D as string, epoch: 2 } }), 1100))).toBe('granted')
    expect(reason(h.handle(X as string, renew(X as string, 2, 1), 1150))).toBe('not-member')
    expect(reason(h.handle(D as string, renew(D as string, 3, 1), 1150))).toBe('not-member')
    const out = h.handle(D as string, { ...renew(D as string, 2, 1), members: [D as string, H as string, W as string] }, 1200)
    expect(reason(out)).toBe('granted')
    expect(h.state(VM)).toMatchObject({ epoch: 2, owner: D })
    // ...and the old owner, now at an older epoch, is refused.
    expect(reason(h.handle(O as string, renew(O as string, 1, 3), 1300))).toBe('stale-epoch')
  })

  it('a hand-over named by a non-owner counts for nothing', () => {
    const h = holderGranted(1000)
    expect(reason(h.handle(X as string, renew(X as string, 1, 1, { handover: { to: X as string, epoch: 2 } }), 1100))).toBe('promised')
    expect(reason(h.handle(X as string, renew(X as string, 2, 2), 1200))).toBe('not-member')
  })

  describe('the owner', () => {
    function leading (): { o: LeaseTable, at: number } {
      const o = table(O as string)
      o.own({ vmId: VM, epoch: 1, members: [H as string, W as string], guest: 'running' }, 0)
      const sent = o.tick(0).filter((e) => e.type === 'send')
      expect(sent).toHaveLength(2)
      for (const m of [H, W]) o.handle(m as string, { type: 'granted', vmId: VM, epoch: 1, round: 1 }, 5)
      expect(o.state(VM)).toMatchObject({ role: 'owner', running: true })
      return { o, at: 10 }
    }

    it('refuses a renewal at epoch + 1 from outside its group and keeps the guest', () => {
      const { o, at } = leading()
      const out = o.handle(X as string, renew(X as string, 2), at)
      expect(reason(out)).toBe('not-member')
      expect(out.effects.filter((e) => e.type === 'fence' || e.type === 'demote')).toEqual([])
      expect(o.state(VM)).toMatchObject({ role: 'owner', epoch: 1, running: true })
    })

    it('refuses a member claiming epoch + 1 while its lease holds (no election can have won)', () => {
      const { o, at } = leading()
      expect(reason(o.handle(W as string, renew(W as string, 2), at))).toBe('owner-alive')
      expect(o.state(VM)).toMatchObject({ role: 'owner', epoch: 1, running: true })
    })

    it('ignores a newer elected owner reported while its lease holds, or one outside its group', () => {
      const { o, at } = leading()
      const told = (owner: string, when: number): LeaseEffect[] => o.handle(W as string, { type: 'refused', vmId: VM, epoch: 1, round: 1, reason: 'stale-epoch', knownEpoch: 2, owner, elected: true }, when).effects
      expect(told(H as string, at).filter((e) => e.type === 'demote')).toEqual([])
      expect(o.state(VM)).toMatchObject({ role: 'owner', running: true })
      // Once the lease has run out (fenced), a member's word about a group member is taken.
      const late = at + t.ownerLeaseMs + 10
      expect(o.tick(late).some((e) => e.type === 'fence')).toBe(true)
      expect(told(X as string, late + 1).filter((e) => e.type === 'demote')).toEqual([])
      expect(told(H as string, late + 2).filter((e) => e.type === 'demote')).toHaveLength(1)
      expect(o.state(VM)).toMatchObject({ role: 'member', epoch: 2, owner: H })
    })

    it('after handing over, it takes the new owner\'s renewals itself (as its witness, say)', () => {
      const { o, at } = leading()
      o.handOver(VM, D as string, at)
      o.disown(VM)
      expect(reason(o.handle(X as string, { ...renew(X as string, 2), members: [X as string, O as string, H as string] }, at + 1))).toBe('not-member')
      expect(reason(o.handle(D as string, { ...renew(D as string, 2), members: [D as string, H as string, O as string] }, at + 2))).toBe('granted')
      expect(o.state(VM)).toMatchObject({ role: 'member', epoch: 2, owner: D })
    })

    it('announces a hand-over in a renewal at once', () => {
      const { o, at } = leading()
      const sends = o.handOver(VM, D as string, at).filter((e) => e.type === 'send')
      expect(sends.map((e) => e.type === 'send' ? e.message : undefined)).toEqual([
        expect.objectContaining({ type: 'renew', epoch: 1, handover: { to: D, epoch: 2 } }),
        expect.objectContaining({ type: 'renew', epoch: 1, handover: { to: D, epoch: 2 } })
      ])
    })
  })
})

describe('the hand-over on the wire', () => {
  it('round-trips, and a hand-over to another epoch than epoch + 1 is refused as malformed', () => {
    const m = renew(O as string, 3, 7, { handover: { to: D as string, epoch: 4 } })
    expect(decodeLeaseRequest(encodeLeaseRequest([m]))).toEqual([m])
    expect(decodeLeaseRequest(encodeLeaseRequest([renew(O as string, 3)]))[0]).not.toHaveProperty('handover')
    expect(() => decodeLeaseRequest(encodeLeaseRequest([renew(O as string, 3, 7, { handover: { to: D as string, epoch: 9 } })]))).toThrow(/hand-over/)
  })
})

describe('no state for unknown VMs on a peer\'s say-so (issue 22, finding 5)', () => {
  it('5,000 renewals for unknown VMs leave no lease, no persist, and cost little', () => {
    const w = table(W as string, [], (vmId, from) => vmId === VM && from === O)
    const started = performance.now()
    let effects = 0
    for (let i = 0; i < 5000; i++) {
      const out = w.handle(X as string, { type: 'renew', vmId: `vm-ghost-${i}`, epoch: 1 + (i % 7), members: [X as string, W as string], leaseMs: t.leaseMs, round: i }, i)
      expect(reason(out)).toBe('unknown-vm')
      effects += out.effects.length
    }
    const ms = performance.now() - started
    console.log(`5,000 renewals for unknown VMs refused in ${ms.toFixed(1)} ms (${(ms * 1000 / 5000).toFixed(1)} µs each)`)
    expect(effects).toBe(0)
    expect(w.vmIds()).toEqual([])
    expect(w.tick(10_000)).toEqual([])
    // 0.3 s at load average ~10, 1.4 s at 23 on this 2-core machine (the loop's expects included):
    // a bound for a loaded CI runner; nothing kept is what matters.
    expect(ms).toBeLessThan(10_000)
    // The VM's real owner (vouched for) still starts the witness's lease.
    expect(reason(w.handle(O as string, renew(O as string, 1), 10_001))).toBe('granted')
    expect(w.vmIds()).toEqual([VM])
  })

  it('a vote request or an answer for an unknown VM leaves nothing either', () => {
    const w = table(W as string, [], () => false)
    expect(w.handle(X as string, { type: 'request-vote', vmId: 'vm-ghost', epoch: 9, members: [X as string, W as string], position: { epoch: 9, seq: 9, takenAt: 9 }, round: 1 }, 0).effects).toEqual([])
    expect(w.handle(X as string, { type: 'refused', vmId: 'vm-ghost', epoch: 9, round: 1, reason: 'stale-epoch', knownEpoch: 9, owner: X as string, elected: true }, 0).effects).toEqual([])
    expect(w.vmIds()).toEqual([])
  })
})
