import { afterEach, describe, expect, it } from 'vitest'
import { balanceView, ControlClient, type RunningAgent } from '@meshvirt/agent'
import { greedyPlan, measure } from '@meshvirt/placement'
import { pb } from '@meshvirt/proto'
import { pollUntil } from '@meshvirt/testkit'
import { simSpec, startInProcessCluster, type InProcessCluster } from '../support/in-process-cluster.js'
import { vmSpecFromWire } from '@meshvirt/agent'

// Rebalancing between real agents (gossip, negotiation, live migration) on the simulated
// hypervisor. Timings scaled down from the defaults (30 s rounds, 2 min hold, 2 min cool-down) to
// 100 ms rounds, 300 ms hold, 500 ms cool-down: the "steady load for 10 minutes" check runs 10 s of
// rounds instead — 100 rounds, 20 cool-downs, the same decisions in the same order.
const KNOBS = { intervalMs: 100, holdMs: 300, cooldownMs: 500, sampleMs: 200 }
const HOST = { vcpus: 8, memoryMiB: 8192 }
const STEADY_MS = 10_000

describe('rebalancing (3 agents, simulated hypervisor)', () => {
  let cluster: InProcessCluster | undefined
  afterEach(async () => { await cluster?.stop(); cluster = undefined })

  const moves = (agents: RunningAgent[]): number => agents.reduce((n, a) => n + (a.balance.balancer?.stats.moves ?? 0), 0)
  const failures = (agents: RunningAgent[]): number => agents.reduce((n, a) => n + (a.balance.balancer?.stats.failures ?? 0), 0)
  const view = (a: RunningAgent): ReturnType<typeof balanceView> => balanceView(a.mesh.view.hosts(), a.hostId)
  /** Every host within the threshold of the mean, as `a` sees the cluster. */
  const balanced = (a: RunningAgent): boolean => {
    const s = measure(view(a), a.balance.knobs.cpuWeight)
    return s.parts.length > 0 && [...s.utilisation.values()].every((u) => u - s.mean <= a.balance.knobs.threshold)
  }
  /** Every agent sees `vms` VMs running and measured, and `hosts` hosts alive. */
  const settled = async (agents: RunningAgent[], vms: number, hosts: number): Promise<void> => {
    await pollUntil(() => agents.every((a) => {
      const entries = a.mesh.view.hosts().filter((h) => h.liveness === 'alive')
      const listed = entries.flatMap((h) => h.advert.vms).filter((v) => v.role === 'owner' && v.state === 'running' && v.usage !== undefined)
      return entries.length === hosts && listed.length === vms
    }), { timeoutMs: 20_000, what: `every agent to see ${vms} measured VMs on ${hosts} hosts` })
  }
  const setMode = async (a: RunningAgent, mode: number): Promise<InstanceType<typeof pb.ControlResponse>> => await new ControlClient(a.controlSocket).call({ clusterBalance: { mode } })

  it('every VM started on one host: balanced within the threshold in no more moves than the greedy plan; then steady load: zero moves', async () => {
    cluster = await startInProcessCluster([HOST, HOST, HOST], { balance: KNOBS })
    const agents = cluster.agents
    const [a, b, c] = agents as [RunningAgent, RunningAgent, RunningAgent]
    for (let i = 0; i < 12; i++) await a.broker.create(vmSpecFromWire({ ...simSpec(`bal-${i}`, 512), host: a.hostId }), `bal-${i}`)
    const stay = (await a.broker.create(vmSpecFromWire({ ...simSpec('stay', 512), host: a.hostId, noBalance: true }), 'stay')).vm.summary?.id as string
    await settled(agents, 13, 3)
    expect(agents.every((x) => x.balance.setting.current.mode === 'off')).toBe(true)
    const plan = greedyPlan(view(a), a.balance.knobs)
    expect(plan.moves.length).toBeGreaterThan(0)

    // Set on c; gossip carries it to a, the only host above the mean.
    const report = await setMode(c, pb.BalanceMode.BALANCE_MODE_AUTO)
    expect(report.balanceReport?.setting?.mode).toBe(pb.BalanceMode.BALANCE_MODE_AUTO)
    await pollUntil(() => agents.every((x) => x.balance.setting.current.mode === 'auto'), { timeoutMs: 10_000, what: 'every agent to follow auto' })
    await pollUntil(() => agents.every(balanced) && agents.every((x) => x.balance.balancer?.stats.moves !== undefined) && moves(agents) > 0, { timeoutMs: 60_000, intervalMs: 100, what: 'the cluster balanced within the threshold' })
    const done = moves(agents)
    expect(failures(agents)).toBe(0)
    expect(done).toBeLessThanOrEqual(plan.moves.length)
    expect(a.vms.get(stay)?.state).toBe('running')

    // Steady load: many rounds, holds and cool-downs later, nothing more moves (no ping-pong).
    const roundsBefore = agents.map((x) => x.balance.balancer?.stats.rounds ?? 0)
    await new Promise((resolve) => setTimeout(resolve, STEADY_MS))
    expect(moves(agents)).toBe(done)
    agents.forEach((x, i) => { expect((x.balance.balancer?.stats.rounds ?? 0) - (roundsBefore[i] ?? 0)).toBeGreaterThanOrEqual(50) })
    expect(agents.every(balanced)).toBe(true)
    expect(a.vms.get(stay)?.state).toBe('running')

    // Every move is an event with its reason, emitted by the source.
    const events = a.monitoring.events.ring.list({ limit: 1000 }).events.map((r) => r.event).filter((e) => e.kind === 'vm-balanced')
    expect(events).toHaveLength(done)
    for (const e of events) {
      expect(e.message).toMatch(/above the mean .*spread \(CV\) [\d.]+ → [\d.]+/)
      expect([b.hostId, c.hostId]).toContain(e.subjectHostId)
    }
  }, 120_000)

  it('recommend mode tells the move as an event and moves nothing; the dry run prints the plan', async () => {
    cluster = await startInProcessCluster([HOST, HOST], { balance: KNOBS })
    const [a, b] = cluster.agents as [RunningAgent, RunningAgent]
    for (let i = 0; i < 6; i++) await a.broker.create(vmSpecFromWire({ ...simSpec(`rec-${i}`, 1024), host: a.hostId }), `rec-${i}`)
    await settled(cluster.agents, 6, 2)
    const dry = (await new ControlClient(b.controlSocket).call({ clusterBalance: { dryRun: true } })).balanceReport
    // a holds 6 × 1024 MiB of 8 GiB (utilisation 37.5 %, CPU measured idle), b nothing: two moves
    // leave a at 25 %, 6 points above the mean (over the threshold of 5); a third evens them.
    expect(dry?.moves?.length).toBe(3)
    expect(dry?.hosts?.find((h) => h.hostId === a.hostId)?.after).toBeCloseTo(0.1875, 6)
    expect(dry?.cvAfter).toBeLessThan(dry?.cvBefore ?? 0)
    expect(dry?.moves?.[0]?.reason).toMatch(/above the mean/)
    await setMode(b, pb.BalanceMode.BALANCE_MODE_RECOMMEND)
    await pollUntil(() => a.monitoring.events.ring.list({ limit: 1000 }).events.some((r) => r.event.kind === 'balance-recommended'), { timeoutMs: 10_000, what: 'a recommendation' })
    expect(a.vms.list()).toHaveLength(6)
    expect(a.balance.balancer?.stats.moves).toBe(0)
  }, 60_000)

  it('takes its knobs from the agent\'s config file and reports them', async () => {
    cluster = await startInProcessCluster([HOST], { config: () => ({ balance: { threshold: 0.2, margin: 0.05, holdS: 7, cooldownS: 9 } }) })
    const [a] = cluster.agents as [RunningAgent]
    expect(a.balance.knobs).toMatchObject({ threshold: 0.2, margin: 0.05, holdMs: 7000, cooldownMs: 9000 })
    const report = (await new ControlClient(a.controlSocket).call({ clusterBalance: {} })).balanceReport
    expect(report).toMatchObject({ threshold: 0.2, margin: 0.05, holdMs: 7000, cooldownMs: 9000 })
  }, 60_000)

  it('a host joining empty receives VMs', async () => {
    cluster = await startInProcessCluster([HOST, HOST, HOST], { balance: KNOBS })
    const [a, b, gone] = cluster.agents as [RunningAgent, RunningAgent, RunningAgent]
    await gone.stop()
    for (let i = 0; i < 6; i++) {
      await a.broker.create(vmSpecFromWire({ ...simSpec(`ja-${i}`, 1024), host: a.hostId }), `ja-${i}`)
      await b.broker.create(vmSpecFromWire({ ...simSpec(`jb-${i}`, 1024), host: b.hostId }), `jb-${i}`)
    }
    // Both see the same two hosts, each with its six VMs measured (not a view a heartbeat behind,
    // nor the stopped host as an empty one).
    await settled([a, b], 12, 2)
    await setMode(a, pb.BalanceMode.BALANCE_MODE_AUTO)
    await pollUntil(() => b.balance.setting.current.mode === 'auto', { timeoutMs: 10_000, what: 'b to follow auto' })
    // Two hosts equally loaded: nothing to do.
    await new Promise((resolve) => setTimeout(resolve, 1500))
    expect(moves([a, b])).toBe(0)

    const c = await cluster.restart(2)
    const agents = cluster.agents
    await settled(agents, 12, 3)
    expect(c.balance.setting.current.mode).toBe('auto')
    await pollUntil(() => c.vms.list().length > 0 && agents.every(balanced), { timeoutMs: 30_000, what: 'the new host to receive VMs and the cluster balanced' })
    await new Promise((resolve) => setTimeout(resolve, 1500))
    expect(c.vms.list().length).toBeGreaterThanOrEqual(2)
    expect(moves(agents)).toBe(c.vms.list().length)
    expect(failures(agents)).toBe(0)
  }, 120_000)
})
