import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ControlClient, vmView, type VmView } from '@meshvirt/agent'
import { meshvirtOn, pollUntil, type AgentProcess } from '@meshvirt/testkit'
import { startSimAgents, type SimAgents } from '../support/sim-agents.js'

const BROKERS = 8
const VMS = 200
/** A /24's host addresses besides the gateway. */
const HOST_ADDRESSES = 253
/** Answers a client retries with the same idempotency key (as the CLI does): the request may still land. */
const RETRYABLE = new Set(['UNAVAILABLE', 'IN_PROGRESS', 'TIMEOUT', 'AGENT_UNREACHABLE'])

/**
 * Addresses without a coordinator under a race (issue 16): 8 agent processes (simulated hypervisor)
 * each brokering creates at once onto one /24 — 200 VMs. Brokers that pick the same address meet at
 * its rendezvous authorities, and only one gets it.
 */
describe(`${BROKERS} brokers, ${VMS} VMs, one /24 (then filled)`, () => {
  let cluster: SimAgents
  beforeAll(async () => {
    cluster = await startSimAgents(BROKERS, () => ['--cpu-ratio', '64'])
  }, 120_000)
  afterAll(async () => { await cluster?.stop() })

  const client = (a: AgentProcess): ControlClient => new ControlClient(join(a.dataDir, 'control.sock'))

  async function create (a: AgentProcess, key: string, name: string): Promise<void> {
    for (let tries = 1; ; tries++) {
      try {
        await client(a).call({ idempotencyKey: key, createVm: { spec: { name, resources: { vcpus: 1, memoryBytes: 32 * 2 ** 20, diskBytes: 0 }, boot: { kernel: '/sim/vmlinux' }, nics: [{ network: 'race' }] } } }, { timeoutMs: 60_000 })
        return
      } catch (err) {
        if (!RETRYABLE.has((err as { code?: string }).code ?? '') || tries >= 20) throw err
        await new Promise((resolve) => setTimeout(resolve, 300))
      }
    }
  }

  it('every VM is created, every address unique', async () => {
    const first = cluster.agents[0] as AgentProcess
    expect(await meshvirtOn(first, ['net', 'create', 'race', '--subnet', '10.77.0.0/24'])).toContain('network race created: 10.77.0.0/24, gateway 10.77.0.1')
    await pollUntil(async () => {
      for (const a of cluster.agents) if (!(await meshvirtOn(a, ['net', 'ls'])).includes('race')) return false
      return true
    }, { timeoutMs: 15_000, what: 'every agent to know network race' })
    const started = performance.now()
    const results = await Promise.allSettled(Array.from({ length: VMS }, async (_, i) => { await create(cluster.agents[i % BROKERS] as AgentProcess, `race-${i}`, `r${i}`) }))
    const ms = performance.now() - started
    expect(results.filter((r) => r.status === 'rejected').map((r) => ((r as PromiseRejectedResult).reason as Error).message)).toEqual([])
    // Counted where they run: each agent's own VMs (a cluster-wide listing fans out with a 5 s bound
    // per host, and a host that busy answers it late). Each VM once, on one host.
    let vms: VmView[] = []
    let perHost: number[] = []
    try {
      await pollUntil(async () => {
        const lists = await Promise.all(cluster.agents.map(async (a) => ((await client(a).call({ listVms: { localOnly: true } })).vmList?.vms ?? []).map((v) => vmView(v))))
        perHost = lists.map((l) => l.length)
        vms = lists.flat()
        return vms.length >= VMS
      }, { timeoutMs: 60_000, what: `all ${VMS} VMs on their hosts` })
    } catch (err) {
      const names = new Set(vms.map((v) => v.name))
      throw new Error(`${(err as Error).message}: ${vms.length} found (per host ${perHost.join(', ')}); missing ${Array.from({ length: VMS }, (_, i) => `r${i}`).filter((n) => !names.has(n)).join(', ')}`)
    }
    expect(vms).toHaveLength(VMS)
    expect(new Set(vms.map((v) => v.id)).size).toBe(VMS)
    const ips = vms.map((v) => v.nics[0]?.ip ?? '')
    // An address held twice is named with its VMs and their hosts (what to look for in the logs).
    const byIp = new Map<string, VmView[]>()
    for (const v of vms) byIp.set(v.nics[0]?.ip ?? '', [...(byIp.get(v.nics[0]?.ip ?? '') ?? []), v])
    const twice = [...byIp.entries()].filter(([, held]) => held.length > 1).map(([ip, held]) => `${ip}: ${held.map((v) => `${v.name} (${v.id}) on ${v.owner.slice(-8)}`).join(' and ')}`)
    expect(twice).toEqual([])
    expect(new Set(ips).size).toBe(VMS)
    expect(ips.every((ip) => /^10\.77\.0\.([2-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-4])$/.test(ip))).toBe(true)
    // `net show` lists each VM once, with its address and host.
    await pollUntil(async () => (JSON.parse(await meshvirtOn(first, ['net', 'show', 'race', '--json'])) as { ports: unknown[] }).ports.length === VMS,
      { timeoutMs: 30_000, what: `net show to list ${VMS} ports (from gossip)` })
    console.log(`${VMS} VMs with a NIC through ${BROKERS} brokers at once: ${(ms / 1000).toFixed(1)} s, ${new Set(ips).size} distinct addresses`)
  }, 300_000)

  it('the /24 filled to its last address, then one more is refused clearly and nothing is half-created', async () => {
    const onRace = async (): Promise<VmView[]> => (await Promise.all(cluster.agents.map(async (a) => ((await client(a).call({ listVms: { localOnly: true } })).vmList?.vms ?? []).map((v) => vmView(v))))).flat()
    // Whatever the race left (200 when it passed), filled up to the last address.
    const rest = HOST_ADDRESSES - (await onRace()).length
    const results = await Promise.allSettled(Array.from({ length: rest }, async (_, i) => { await create(cluster.agents[i % BROKERS] as AgentProcess, `fill-${i}`, `f${i}`) }))
    expect(results.filter((r) => r.status === 'rejected').map((r) => ((r as PromiseRejectedResult).reason as Error).message)).toEqual([])
    const first = cluster.agents[0] as AgentProcess
    let refused: { code?: string, message: string } | undefined
    try {
      await client(first).call({ idempotencyKey: 'one-too-many', createVm: { spec: { name: 'overflow', resources: { vcpus: 1, memoryBytes: 32 * 2 ** 20, diskBytes: 0 }, boot: { kernel: '/sim/vmlinux' }, nics: [{ network: 'race' }] } } }, { timeoutMs: 60_000 })
    } catch (err) {
      refused = err as { code?: string, message: string }
    }
    expect(refused).toMatchObject({ code: 'RESOURCE_EXHAUSTED', message: expect.stringContaining(`network race (10.77.0.0/24) has no free address: all ${HOST_ADDRESSES} host addresses besides the gateway are in use`) })
    let named: { code?: string } | undefined
    try { await client(first).call({ inspectVm: { vm: { name: 'overflow' } } }) } catch (err) { named = err as { code?: string } }
    expect(named).toMatchObject({ code: 'NOT_FOUND' })
    const ips = (await onRace()).map((v) => v.nics[0]?.ip ?? '')
    expect(ips).toHaveLength(HOST_ADDRESSES)
    expect(new Set(ips).size).toBe(HOST_ADDRESSES)
  }, 300_000)
})
