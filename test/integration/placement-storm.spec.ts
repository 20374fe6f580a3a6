import { afterEach, describe, expect, it } from 'vitest'
import { PeerClient, type ControlError } from '@meshvirt/agent'
import { simSpec, startInProcessCluster, type InProcessCluster } from '../support/in-process-cluster.js'
import { vmSpecFromWire } from '@meshvirt/agent'

// 8 hosts whose memory holds exactly 300 VMs of 128 MiB (memory overcommit 1.0).
const VMS_PER_HOST = [40, 40, 40, 40, 35, 35, 35, 35]
const CAPACITY = VMS_PER_HOST.reduce((a, b) => a + b, 0)

describe('placement storm: every agent brokers at once', () => {
  let cluster: InProcessCluster | undefined
  afterEach(async () => { await cluster?.stop(); cluster = undefined })

  it('500 creates from 8 brokers into room for 300: exactly 300 VMs, each once, never overcommitted', async () => {
    // LAN timing: eight agents share this process's event loop, and the storm keeps it busy.
    cluster = await startInProcessCluster(VMS_PER_HOST.map((n) => ({ vcpus: 64, memoryMiB: n * 128 })), { timing: 'lan' })
    const { agents } = cluster
    // Audit every ledger after every change it makes (commit, reserve, release).
    const violations: string[] = []
    for (const a of agents) {
      const check = (): void => { const over = a.ledger.audit(); if (over.length > 0) violations.push(`${a.hostId}: ${over.join(',')}`) }
      a.mesh.view.subscribe(check)
      a.events.on('vm:committed', check)
    }

    const results = await Promise.all(Array.from({ length: 500 }, async (_, i) => {
      const broker = agents[i % agents.length]!
      try {
        const r = await broker.broker.create(vmSpecFromWire(simSpec(`storm-${i}`)), `key-${i}`)
        return { i, ok: true as const, id: r.vm.summary?.id as string, owner: r.vm.summary?.owner as string }
      } catch (err) {
        return { i, ok: false as const, code: (err as ControlError).code, message: (err as Error).message }
      }
    }))

    const ok = results.filter((r) => r.ok)
    const failed = results.filter((r) => !r.ok)
    const refusedFor = [...new Set(failed.map((f) => `${f.code}: ${f.message}`))].slice(0, 5).join(' | ')
    expect(ok.length, `placed; refusals: ${refusedFor}`).toBe(CAPACITY)
    expect(failed.filter((f) => f.code !== 'NO_CAPACITY').map((f) => `${f.code}: ${f.message}`)).toEqual([])
    expect(failed[0]?.message).toMatch(/no host fits|gave up/)
    // Each VM exists exactly once, on the host the broker said.
    const owned = agents.flatMap((a) => a.vms.list().map((v) => ({ id: v.id, owner: a.hostId })))
    expect(owned.length).toBe(CAPACITY)
    expect(new Set(owned.map((v) => v.id)).size).toBe(CAPACITY)
    for (const r of ok) expect(owned.find((v) => v.id === r.id)?.owner).toBe(r.owner)
    for (const [i, a] of agents.entries()) {
      expect(a.vms.list().length).toBe(VMS_PER_HOST[i])
      expect(a.ledger.audit()).toEqual([])
    }
    expect(violations).toEqual([])

    // Client retries at other brokers with the same idempotency keys create nothing new.
    const retried = await Promise.all(ok.slice(0, 40).map(async (r, j) => await agents[(r.i + 1 + j) % agents.length]!.broker.create(vmSpecFromWire(simSpec(`storm-${r.i}`)), `key-${r.i}`)))
    for (const [j, r] of retried.entries()) {
      expect(r.existed).toBe(true)
      expect(r.vm.summary?.id).toBe(ok[j]?.id)
    }
    expect(agents.reduce((n, a) => n + a.vms.list().length, 0)).toBe(CAPACITY)
    // A name in use is refused for another request.
    await expect(agents[3]!.broker.create(vmSpecFromWire(simSpec(`storm-${ok[0]!.i}`)), 'another-key')).rejects.toMatchObject({ code: 'NAME_TAKEN' })
  }, 120_000)

  it('a broker that dies right after Reserve leaves nothing behind once the TTL passes', async () => {
    cluster = await startInProcessCluster([{ vcpus: 8, memoryMiB: 1024 }, { vcpus: 8, memoryMiB: 512 }, { vcpus: 8, memoryMiB: 512 }])
    const [a, b] = cluster.agents as [typeof cluster.agents[0], typeof cluster.agents[0]]
    // b acts as a broker: reserves all of a's memory, then dies before Commit.
    const peers = new PeerClient(b.mesh)
    const res = await peers.negotiate(a.hostId, { reserve: { requestId: 'dying-broker/1', brokerId: b.hostId, resources: { vcpus: 1, memoryBytes: 1024 * 2 ** 20 }, ttlMs: 1500 } })
    expect(res.reserved?.token).toBeTruthy()
    expect(a.ledger.capacity().reservations.memoryBytes).toBe(1024 * 2 ** 20)
    await b.stop()
    // While held, nothing else fits on a: a create pinned there waits for the reservation to
    // commit or expire (room held only by reservations is room that may remain), then lands.
    const t0 = Date.now()
    const placed = await cluster.agents[2]!.broker.create(vmSpecFromWire({ ...simSpec('big', 1024), host: a.hostId }), 'big-1')
    expect(placed.vm.summary?.owner).toBe(a.hostId)
    expect(Date.now() - t0).toBeGreaterThan(500)
    expect(a.ledger.capacity()).toMatchObject({ reservations: { memoryBytes: 0 }, allocated: { memoryBytes: 1024 * 2 ** 20 } })
    expect(a.ledger.audit()).toEqual([])
  }, 60_000)
})
