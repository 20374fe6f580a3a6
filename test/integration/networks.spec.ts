import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ControlClient, networkView, vmView, type RunningAgent, type VmView } from '@meshvirt/agent'
import { pollUntil } from '@meshvirt/testkit'
import { call, failure } from '../support/control-calls.js'
import { simSpec, startInProcessCluster, type InProcessCluster } from '../support/in-process-cluster.js'

const AGENTS = 3
const VMS = 24
/** A /28 has 14 host addresses; the gateway holds one. */
const TINY_ADDRESSES = 13

/** Answers a client retries with the same idempotency key (as the CLI does): the request may still land. */
const RETRYABLE = new Set(['UNAVAILABLE', 'IN_PROGRESS', 'TIMEOUT'])

/** A create as a client makes it under load: retried with its key until it lands or is refused for good. */
async function create (a: RunningAgent, key: string, spec: object): Promise<Awaited<ReturnType<ControlClient['call']>>> {
  return await retried(a, { idempotencyKey: key, createVm: { spec } })
}

async function retried (a: RunningAgent, req: object): Promise<Awaited<ReturnType<ControlClient['call']>>> {
  for (let tries = 1; ; tries++) {
    try {
      return await call(a, req)
    } catch (err) {
      if (!RETRYABLE.has((err as { code?: string }).code ?? '') || tries >= 10) throw err
      await new Promise((resolve) => setTimeout(resolve, 300))
    }
  }
}

// Networks as cluster objects and addresses without a coordinator (issue 16), on 3 real agents in
// one process (real libp2p, real negotiation and claims; simulated hypervisor and host network).
describe('networks and addresses across agents', () => {
  let cluster: InProcessCluster
  const agents = (): RunningAgent[] => cluster.agents
  beforeAll(async () => {
    cluster = await startInProcessCluster(Array.from({ length: AGENTS }, () => ({ vcpus: 64, memoryMiB: 64 * 1024 })))
  }, 120_000)
  afterAll(async () => { await cluster?.stop() })

  it('a network created at one agent is known to all; created again it is the same; a clash is refused', async () => {
    const [a, b] = agents() as [RunningAgent, RunningAgent]
    const made = networkView((await call(a, { idempotencyKey: 'k-front', createNetwork: { name: 'front', subnet: '10.10.0.0/24' } })).network ?? {})
    expect(made).toMatchObject({ name: 'front', subnet: '10.10.0.0/24', gateway: '10.10.0.1', dhcp: true, nat: false })
    expect(made.vni).toBeGreaterThan(0)
    await pollUntil(async () => {
      for (const x of agents()) if ((await call(x, { listNetworks: {} })).networkList?.networks?.length !== 1) return false
      return true
    }, { timeoutMs: 10_000, what: 'every agent to know network front' })
    // The same definition again, at another agent: the network that exists.
    const again = networkView((await call(b, { idempotencyKey: 'k-front-2', createNetwork: { name: 'front', subnet: '10.10.0.0/24' } })).network ?? {})
    expect(again.id).toBe(made.id)
    expect(await failure(call(b, { idempotencyKey: 'k-front-3', createNetwork: { name: 'front', subnet: '10.11.0.0/24' } }))).toMatchObject({ code: 'ALREADY_EXISTS' })
    expect(await failure(call(b, { idempotencyKey: 'k-over', createNetwork: { name: 'over', subnet: '10.10.0.0/16' } }))).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('overlaps network front') })
    expect(await failure(call(b, { idempotencyKey: 'k-bad', createNetwork: { name: 'bad', subnet: '10.12.0.1/24' } }))).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('--subnet') })
    // Two networks never share a VXLAN id.
    const back = networkView((await call(b, { idempotencyKey: 'k-back', createNetwork: { name: 'back', subnet: '10.20.0.0/24', nat: true } })).network ?? {})
    expect(back.vni).not.toBe(made.vni)
  })

  it('VMs with NICs get distinct addresses and MACs; a full range is refused clearly, nothing half-created', async () => {
    await Promise.all(Array.from({ length: VMS }, async (_, i) => await create(agents()[i % AGENTS] as RunningAgent, `vm-${i}`, { ...simSpec(`r${i}`, 64), nics: [{ network: 'front' }] })))
    let vms: VmView[] = []
    await pollUntil(async () => (vms = await listOn('front')).length >= VMS, { timeoutMs: 20_000, what: `all ${VMS} VMs listed` })
    expect(new Set(vms.map((v) => v.nics[0]?.ip)).size).toBe(VMS)
    expect(vms.map((v) => v.nics[0]?.ip)).not.toContain('10.10.0.1')
    expect(new Set(vms.map((v) => v.nics[0]?.mac)).size).toBe(VMS)

    // A range filled up (a /28, so the test stays short), then one too many.
    const a = agents()[0] as RunningAgent
    await call(a, { idempotencyKey: 'k-tiny', createNetwork: { name: 'tiny', subnet: '10.40.0.0/28' } })
    await Promise.all(Array.from({ length: TINY_ADDRESSES }, async (_, i) => await create(agents()[i % AGENTS] as RunningAgent, `fill-${i}`, { ...simSpec(`t${i}`, 64), nics: [{ network: 'tiny' }] })))
    const tiny = await listOn('tiny')
    expect(new Set(tiny.map((v) => v.nics[0]?.ip)).size).toBe(TINY_ADDRESSES)
    const full = await failure(call(a, { idempotencyKey: 'one-too-many', createVm: { spec: { ...simSpec('overflow', 64), nics: [{ network: 'tiny' }] } } }))
    expect(full).toMatchObject({ code: 'RESOURCE_EXHAUSTED', message: expect.stringContaining('network tiny (10.40.0.0/28) has no free address') })
    // Nothing half-created: the refused VM's name is free and no VM of that name exists.
    expect(await failure(call(a, { inspectVm: { vm: { name: 'overflow' } } }))).toMatchObject({ code: 'NOT_FOUND' })
  }, 300_000)

  it('every host with ports forwards to every remote NIC of the network, and nowhere else', async () => {
    const all = await listOn('front')
    await pollUntil(() => cluster.networks.every((net, i) => {
      const mine = all.filter((v) => v.owner === (agents()[i] as RunningAgent).hostId).length
      const peers = net.state().peers.front
      return mine === 0 ? peers === undefined : peers?.nics.length === all.length - mine
    }), { timeoutMs: 15_000, what: 'every host to forward to every remote NIC' })
    for (const net of cluster.networks) {
      const s = net.state()
      expect(new Set(s.ports.map((p) => p.tap)).size).toBe(s.ports.length)
    }
  })

  it('VXLAN is accepted only from the cluster\'s hosts: each host\'s driver lists every other host\'s underlay', async () => {
    const hosts = (await call(agents()[0] as RunningAgent, { listHosts: {} })).hostList?.hosts ?? []
    const underlayOf = new Map(hosts.map((h) => [h.advert?.hostId ?? '', h.advert?.underlay ?? '']))
    await pollUntil(() => cluster.networks.every((net, i) => {
      const self = (agents()[i] as RunningAgent).hostId
      const others = [...new Set([...underlayOf].filter(([id, u]) => id !== self && u !== '').map(([, u]) => u))].sort()
      return JSON.stringify(net.state().tunnelPeers) === JSON.stringify(others)
    }), { timeoutMs: 15_000, what: 'every host to accept VXLAN from the others only' })
    expect(cluster.networks[0]?.state().tunnelPeers?.length).toBeGreaterThan(0)
  })

  it('an address a VM uses is refused even when every host has lost its claim (a claim that lapsed, deciders that changed)', async () => {
    const held = (await listOn('front'))[1] as VmView
    const ip = held.nics[0]?.ip as string
    // Every agent forgets the claim on the address: what the authorities know is gone, the gossip remains.
    for (let i = 0; i < AGENTS; i++) {
      const db = new Database(join(cluster.dir, `h${i}`, 'state.db'))
      try { db.prepare('DELETE FROM name_claims WHERE name LIKE ?').run(`ip:%:${ip}`) } finally { db.close() }
    }
    const a = agents()[2] as RunningAgent
    expect(await failure(call(a, { idempotencyKey: 'ask-lapsed', createVm: { spec: { ...simSpec('lapsed', 64), nics: [{ network: 'front', ip }] } } })))
      .toMatchObject({ code: 'ALREADY_EXISTS', message: expect.stringContaining(`address ${ip} on network front is taken`) })
  })

  it('an address asked for: refused when taken, outside the subnet or on an unknown network; freed when its VM is deleted', async () => {
    const a = agents()[1] as RunningAgent
    const taken = (await listOn('front'))[0] as VmView
    const ip = taken.nics[0]?.ip as string
    expect(await failure(call(a, { idempotencyKey: 'ask-taken', createVm: { spec: { ...simSpec('asks', 64), nics: [{ network: 'back', ip: '10.20.0.1' }] } } }))).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('gateway') })
    expect(await failure(call(a, { idempotencyKey: 'ask-out', createVm: { spec: { ...simSpec('asks', 64), nics: [{ network: 'back', ip: '10.10.0.9' }] } } }))).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('not a host address of 10.20.0.0/24') })
    expect(await failure(call(a, { idempotencyKey: 'ask-nonet', createVm: { spec: { ...simSpec('asks', 64), nics: [{ network: 'nowhere' }] } } }))).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('no such network') })
    expect(await failure(call(a, { idempotencyKey: 'ask-dup', createVm: { spec: { ...simSpec('asks', 64), nics: [{ network: 'front', ip }] } } }))).toMatchObject({ code: 'ALREADY_EXISTS', message: expect.stringContaining(`address ${ip} on network front is taken`) })
    // The network in use cannot go.
    expect(await failure(call(a, { idempotencyKey: 'del-front', deleteNetwork: { name: 'front' } }))).toMatchObject({ code: 'FAILED_PRECONDITION', message: expect.stringContaining('in use') })
    await call(a, { idempotencyKey: 'del-taken', deleteVm: { vm: { name: taken.name } } })
    // Free again once the deletion has been gossiped (the authorities refuse an address a listed VM uses).
    let got: VmView | undefined
    await pollUntil(async () => {
      got = vmView((await call(a, { idempotencyKey: 'ask-free', createVm: { spec: { ...simSpec('asks', 64), nics: [{ network: 'front', ip }, { network: 'back' }] } } }).catch(() => ({ vm: undefined }))).vm ?? {})
      return got.id !== ''
    }, { timeoutMs: 10_000, what: `address ${ip} to be free again` })
    got = got as VmView
    expect(got.nics.map((n) => [n.network, n.ip])).toEqual([['front', ip], ['back', expect.stringMatching(/^10\.20\.0\./)]])
  })

  it('deleted VMs leave nothing on their hosts; a deleted network goes from every host', async () => {
    const a = agents()[0] as RunningAgent
    const vms = (await call(a, { listVms: {} })).vmList?.vms?.map((v) => vmView(v)) ?? []
    for (let i = 0; i < vms.length; i += 16) {
      await Promise.all(vms.slice(i, i + 16).map(async (vm) => await retried(a, { idempotencyKey: `del-${vm.id}`, deleteVm: { vm: { id: vm.id } } })
        // A retry of a delete whose answer was lost finds it done.
        .catch((err: { code?: string }) => { if (err.code !== 'NOT_FOUND') throw err })))
    }
    await pollUntil(() => cluster.networks.every((n) => n.state().ports.length === 0 && n.state().networks.length === 0), { timeoutMs: 20_000, what: 'every host to remove its ports and networks' })
    await call(a, { idempotencyKey: 'del-front-2', deleteNetwork: { name: 'front' } })
    await pollUntil(async () => {
      for (const x of agents()) if ((await call(x, { listNetworks: {} })).networkList?.networks?.some((n) => n.network?.name === 'front') === true) return false
      return true
    }, { timeoutMs: 10_000, what: 'every agent to forget network front' })
    // The name and its addresses are free again: the same name with another subnet.
    const again = networkView((await call(a, { idempotencyKey: 'k-front-new', createNetwork: { name: 'front', subnet: '10.30.0.0/24' } })).network ?? {})
    expect(again.subnet).toBe('10.30.0.0/24')
  }, 120_000)

  async function listOn (network: string): Promise<VmView[]> {
    const res = await call(agents()[0] as RunningAgent, { listVms: {} })
    return (res.vmList?.vms ?? []).map((v) => vmView(v)).filter((v) => v.nics.some((n) => n.network === network))
  }
})
