import { afterEach, describe, expect, it, vi } from 'vitest'
import { LeaseService, type LeaseHooks } from '../src/lease/lease-service.js'
import { LEASE_IDLE_TICK_MS, LEASE_TICK_MS } from '../src/lease/constants.js'
import type { OwnedGroup } from '../src/lease/lease-table.js'
import { encodeLeaseRequest } from '../src/lease/lease-codec.js'
import type { RequestHandler } from '@meshvirt/mesh'

/**
 * A host in no lease ticks once a second instead of 20 times; a replicated VM of its own or a
 * peer's lease request puts it back on the full rate. Fake timers, a mesh that never answers.
 */
describe('the lease service of a host in no lease', () => {
  afterEach(() => { vi.useRealTimers() })

  async function service (groups: () => OwnedGroup[]): Promise<{ svc: LeaseService, ticks: () => number, serve: (bytes: Uint8Array) => Promise<Uint8Array> }> {
    let ticks = 0
    let handler: RequestHandler | undefined
    const hooks: LeaseHooks = {
      ownedGroups: () => { ticks++; return groups() },
      replicaPosition: () => undefined,
      fence: async () => {},
      resume: async () => {},
      promote: async () => {},
      demote: async () => {},
      loadLeases: () => [],
      saveLease: async () => {},
      event: () => {},
      vouches: () => true
    }
    const mesh = {
      hostId: 'self',
      handle: async (_p: string, h: RequestHandler) => { handler = h },
      unhandle: async () => {},
      request: async () => await new Promise<Uint8Array>(() => {})
    }
    const svc = new LeaseService({ mesh }, { hooks, restarted: false })
    await svc.start()
    return { svc, ticks: () => ticks, serve: async (bytes) => await (handler as RequestHandler)(bytes, 'peer', new AbortController().signal) }
  }

  it('ticks once a second while it takes part in no lease', async () => {
    vi.useFakeTimers()
    const { svc, ticks } = await service(() => [])
    const before = ticks()
    await vi.advanceTimersByTimeAsync(10 * LEASE_IDLE_TICK_MS)
    expect(ticks() - before).toBe(10)
    await svc.stop()
  })

  it('goes back to the full rate when it owns a replicated VM, and slows again when it no longer does', async () => {
    vi.useFakeTimers()
    let groups: OwnedGroup[] = []
    const { svc, ticks } = await service(() => groups)
    groups = [{ vmId: 'vm-1', epoch: 1, members: ['a', 'b'], guest: 'running' }]
    await vi.advanceTimersByTimeAsync(LEASE_IDLE_TICK_MS) // the idle tick that finds it
    let before = ticks()
    await vi.advanceTimersByTimeAsync(1000)
    expect(ticks() - before).toBe(1000 / LEASE_TICK_MS)
    groups = []
    await vi.advanceTimersByTimeAsync(LEASE_TICK_MS) // disowned, and the lease is gone
    before = ticks()
    await vi.advanceTimersByTimeAsync(3 * LEASE_IDLE_TICK_MS)
    expect(ticks() - before).toBe(3)
    await svc.stop()
  })

  it('a request from a peer wakes it at once', async () => {
    vi.useFakeTimers()
    const { svc, ticks, serve } = await service(() => [])
    await vi.advanceTimersByTimeAsync(LEASE_IDLE_TICK_MS / 2)
    const before = ticks()
    // The owner of vm-1 (a peer) asks this host, a member of its group, to grant its lease.
    await serve(encodeLeaseRequest([{ type: 'renew', vmId: 'vm-1', epoch: 1, members: ['peer', 'self', 'other'], leaseMs: 2000, round: 1 }]))
    expect(svc.state('vm-1')).toBeDefined()
    await vi.advanceTimersByTimeAsync(10 * LEASE_TICK_MS)
    expect(ticks() - before).toBe(10)
    await svc.stop()
  })
})
