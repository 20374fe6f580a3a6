import { generateIdentity } from '@meshvirt/mesh'
import { pb } from '@meshvirt/proto'
import { describe, expect, it } from 'vitest'
import type { ClusterEvent } from '../src/monitor/cluster-event.js'
import { EmitterOrder } from '../src/monitor/emitter-order.js'
import { EventRing } from '../src/monitor/event-ring.js'
import { openSignedEvent, signEvent } from '../src/monitor/signed-event.js'
import { diffVms, type VmFacts } from '../src/monitor/vm-diff.js'

const event = (over: Partial<ClusterEvent> = {}): ClusterEvent => ({
  hostId: 'h', incarnation: 1, seq: 1, timeMs: 1000, kind: 'vm-created', vmId: 'vm-1', vmName: 'web', vmEpoch: 1, subjectHostId: '', message: '', ...over
})

describe('EventRing', () => {
  it('keeps the newest `capacity` events and says how many a reader missed', () => {
    const ring = new EventRing(3)
    for (let i = 1; i <= 5; i++) ring.append(event({ seq: i }))
    const page = ring.list()
    expect(page.events.map((r) => [r.cursor, r.event.seq])).toEqual([[3, 3], [4, 4], [5, 5]])
    expect(page.missed).toBe(2)
    expect(page.nextCursor).toBe(5)
    expect(ring.list({ afterCursor: 4 })).toMatchObject({ events: [{ cursor: 5 }], missed: 0 })
    expect(ring.list({ afterCursor: 5 }).events).toEqual([])
  })

  it('filters by VM id or name, and the cursor moves past what the filter skipped', () => {
    const ring = new EventRing()
    ring.append(event({ vmId: 'a', vmName: 'alpha' }))
    ring.append(event({ vmId: 'b', vmName: 'beta' }))
    ring.append(event({ kind: 'host-dead', vmId: '', vmName: '', subjectHostId: 'x' }))
    expect(ring.list({ vm: 'b' }).events.map((r) => r.cursor)).toEqual([2])
    expect(ring.list({ vm: 'alpha' })).toMatchObject({ events: [{ cursor: 1 }], nextCursor: 3 })
  })

  it('pages with a limit', () => {
    const ring = new EventRing()
    for (let i = 1; i <= 5; i++) ring.append(event({ seq: i }))
    const first = ring.list({ limit: 2 })
    expect(first.events.map((r) => r.cursor)).toEqual([1, 2])
    expect(ring.list({ afterCursor: first.nextCursor, limit: 2 }).events.map((r) => r.cursor)).toEqual([3, 4])
  })

  it('starts over for a cursor from before an agent restart (beyond its end)', () => {
    const ring = new EventRing()
    ring.append(event())
    expect(ring.list({ afterCursor: 99 }).events).toHaveLength(1)
  })

  it('wait() answers at the first matching event, or empty at the deadline', async () => {
    const ring = new EventRing()
    const waiting = ring.wait({ afterCursor: 0, vm: 'b' }, 5_000)
    ring.append(event({ vmId: 'a' }))
    ring.append(event({ vmId: 'b' }))
    expect((await waiting).events.map((r) => r.cursor)).toEqual([2])
    const t0 = Date.now()
    expect((await ring.wait({ afterCursor: 2 }, 50)).events).toEqual([])
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45)
  })
})

describe('signed events', () => {
  it('verify against the key inside the host id', async () => {
    const id = await generateIdentity()
    const bytes = await signEvent(id.privateKey, event({ hostId: id.hostId }))
    const opened = await openSignedEvent(bytes, id.hostId)
    expect(opened).toMatchObject({ ok: true, event: { hostId: id.hostId, kind: 'vm-created', vmName: 'web' } })
  })

  it('refuse a forged host id, a tampered event, a wrong gossip signer, junk and oversize', async () => {
    const a = await generateIdentity()
    const b = await generateIdentity()
    // Signed by b but claiming to be a.
    const forged = await signEvent(b.privateKey, event({ hostId: a.hostId }))
    expect(await openSignedEvent(forged)).toMatchObject({ ok: false, reason: 'bad-signature' })
    // a's event, altered after signing.
    const good = pb.SignedEvent.decode(await signEvent(a.privateKey, event({ hostId: a.hostId })))
    const altered = pb.ClusterEvent.decode(good.event)
    altered.vmName = 'evil'
    const tampered = pb.SignedEvent.encode({ event: pb.ClusterEvent.encode(altered).finish(), signature: good.signature }).finish()
    expect(await openSignedEvent(tampered)).toMatchObject({ ok: false, reason: 'bad-signature' })
    // Relayed as if b had emitted it.
    expect(await openSignedEvent(pb.SignedEvent.encode(good).finish(), b.hostId)).toMatchObject({ ok: false, reason: 'signer-mismatch' })
    expect(await openSignedEvent(new Uint8Array([0xff, 0xff, 0xff]))).toMatchObject({ ok: false, reason: 'undecodable' })
    expect(await openSignedEvent(new Uint8Array(10_000))).toMatchObject({ ok: false, reason: 'oversized' })
    const noVm = await signEvent(a.privateKey, event({ hostId: a.hostId, vmId: '' }))
    expect(await openSignedEvent(noVm)).toMatchObject({ ok: false, reason: 'invalid' })
    const notAPeerId = await signEvent(a.privateKey, event({ hostId: 'not-a-peer-id' }))
    expect(await openSignedEvent(notAPeerId)).toMatchObject({ ok: false, reason: 'invalid' })
  })

  it('over gossip, lean on the signature gossipsub checked: the signer must still be the emitter', async () => {
    const a = await generateIdentity()
    const b = await generateIdentity()
    const good = pb.SignedEvent.decode(await signEvent(a.privateKey, event({ hostId: a.hostId })))
    // b relaying a's event under its own gossip signature is refused before any signature check.
    expect(await openSignedEvent(pb.SignedEvent.encode(good).finish(), b.hostId, { signerVerified: true })).toMatchObject({ ok: false, reason: 'signer-mismatch' })
    // Bytes gossipsub verified as a's are a's: the event's own signature is not checked again.
    const unsigned = pb.SignedEvent.encode({ event: good.event, signature: new Uint8Array(64) }).finish()
    expect(await openSignedEvent(unsigned, a.hostId, { signerVerified: true })).toMatchObject({ ok: true, event: { hostId: a.hostId } })
    expect(await openSignedEvent(unsigned, a.hostId)).toMatchObject({ ok: false, reason: 'bad-signature' })
  })
})

describe('EmitterOrder', () => {
  it.each([
    ['first event of a new host', undefined, [1, 1], 'next'],
    ['a host first met mid-stream', undefined, [1, 7], 'gap'],
    ['the next one', [1, 3], [1, 4], 'next'],
    ['a repeat', [1, 3], [1, 3], 'duplicate'],
    ['an older one', [1, 3], [1, 2], 'duplicate'],
    ['a hole', [1, 3], [1, 6], 'gap'],
    ['a restart', [1, 3], [2, 1], 'next'],
    ['a restart, first events lost', [1, 3], [2, 4], 'gap'],
    ['the previous incarnation', [2, 1], [1, 9], 'stale']
  ] as const)('%s', (_what, position, [inc, seq], expected) => {
    const order = new EmitterOrder()
    if (position !== undefined) order.take('h', position[0], position[1])
    expect(order.admit('h', inc, seq)).toBe(expected)
  })
})

describe('diffVms', () => {
  const vm = (id: string, state: string, lastError = '', epoch = 1): VmFacts => ({ id, name: `n-${id}`, epoch, state, lastError })
  const map = (...vms: VmFacts[]): Map<string, VmFacts> => new Map(vms.map((v) => [v.id, v]))
  it.each([
    ['created and running at once', map(), map(vm('a', 'running')), ['vm-created a', 'vm-started a']],
    ['created, still starting', map(), map(vm('a', 'starting')), ['vm-created a']],
    ['created stopped is not "stopped"', map(), map(vm('a', 'stopped')), ['vm-created a']],
    ['started', map(vm('a', 'starting')), map(vm('a', 'running')), ['vm-started a']],
    ['stopped', map(vm('a', 'running')), map(vm('a', 'stopped')), ['vm-stopped a']],
    ['stopping is transient', map(vm('a', 'running')), map(vm('a', 'stopping')), []],
    ['crashed', map(vm('a', 'running')), map(vm('a', 'crashed', 'guest exited: signal')), ['vm-crashed a guest exited: signal']],
    ['failed to start', map(vm('a', 'starting')), map(vm('a', 'failed', 'no kernel')), ['vm-failed a no kernel']],
    ['deleted', map(vm('a', 'stopped'), vm('b', 'running')), map(vm('b', 'running')), ['vm-deleted a']],
    ['nothing changed', map(vm('a', 'running')), map(vm('a', 'running')), []],
    ['migration source: migrating is transient', map(vm('a', 'running')), map(vm('a', 'migrating')), []],
    ['migration source: handed over is no deletion', map(vm('a', 'migrating')), map(), []],
    ['migration source: failed, runs on', map(vm('a', 'migrating')), map(vm('a', 'running')), ['vm-migration-failed a the guest runs on at the source']],
    ['migration destination: arrives running with a later epoch', map(), map(vm('a', 'running', '', 2)), ['vm-migrated a now owned here, epoch 2']]
  ])('%s', (_what, before, after, expected) => {
    expect(diffVms(before, after).map((d) => [d.kind, d.vmId, d.message].filter((x) => x !== '' && x !== undefined).join(' '))).toEqual(expected)
  })
})
