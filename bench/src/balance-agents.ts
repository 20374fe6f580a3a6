/**
 * The same question on real agents, smaller: N in-process agents (real gossip, negotiation and
 * live migration; simulated hypervisor, whose guests measure as idle CPU and their whole memory),
 * VMs of mixed memory sizes packed onto the first hosts, timings shortened (rounds of 200 ms), then
 * `cluster balance --mode auto`. Moves against the greedy plan from the same start, as one agent saw it.
 */
import { performance } from 'node:perf_hooks'
import { balanceView, type RunningAgent } from '@meshvirt/agent'
import { greedyPlan, measure, seededRandom } from '@meshvirt/placement'
import { pb } from '@meshvirt/proto'
import { pollUntil, simVmSpec, startSimCluster } from '@meshvirt/testkit'
import { vmSpecFromWire } from '@meshvirt/agent'

export const AGENT_KNOBS = { intervalMs: 200, holdMs: 600, cooldownMs: 1_000, sampleMs: 500 }
const MIB_SIZES = [256, 512, 512, 1024, 1024, 2048]

export interface AgentsRun {
  agents: number
  vms: number
  cvBefore: number
  cvAfter: number
  moves: number
  greedyMoves: number
  failures: number
  convergeS: number
  steadyMoves: number
  steadyS: number
}

export async function balanceOnAgents (agents: number, vms: number, log: (line: string) => void): Promise<AgentsRun> {
  const hostMiB = 32_768
  const cluster = await startSimCluster(Array.from({ length: agents }, () => ({ vcpus: 16, memoryMiB: hostMiB })), { timing: 'local', readyTimeoutMs: 120_000, balance: AGENT_KNOBS })
  try {
    const all = cluster.agents
    const random = seededRandom('balance-agents')
    const used = new Array<number>(agents).fill(0)
    for (let i = 0; i < vms; i++) {
      const mib = MIB_SIZES[Math.floor(random() * MIB_SIZES.length)] as number
      const h = used.findIndex((u) => u + mib <= 0.9 * hostMiB)
      if (h < 0) throw new Error(`${vms} VMs do not fit on ${agents} hosts of ${hostMiB} MiB`)
      used[h] = (used[h] ?? 0) + mib
      const host = all[h] as RunningAgent
      await host.broker.create(vmSpecFromWire({ ...simVmSpec(`bal-${i}`, mib), host: host.hostId }), `bal-${i}`)
    }
    const a = all[0] as RunningAgent
    const knobs = a.balance.knobs
    await pollUntil(() => all.every((x) => x.mesh.view.hosts().flatMap((h) => h.advert.vms).filter((v) => v.role === 'owner' && v.usage !== undefined).length === vms),
      { timeoutMs: 60_000, what: `every agent to see ${vms} measured VMs` })
    const start = balanceView(a.mesh.view.hosts(), a.hostId)
    const before = measure(start, knobs.cpuWeight)
    const plan = greedyPlan(start, knobs)
    log(`agents: ${vms} VMs on ${used.filter((u) => u > 0).length} of ${agents} in-process agents, CV ${before.cv.toFixed(3)}; greedy plan ${plan.moves.length} moves → CV ${plan.cvAfter.toFixed(3)}`)

    const moves = (): number => all.reduce((n, x) => n + (x.balance.balancer?.stats.moves ?? 0), 0)
    const t0 = performance.now()
    await all[agents - 1]!.balance.handlers?.().clusterBalance?.(pb.ControlRequest.create({ clusterBalance: { mode: pb.BalanceMode.BALANCE_MODE_AUTO } }))
    // Converged: nothing moved for a hold + cool-down + 2 rounds.
    const quietMs = knobs.holdMs + knobs.cooldownMs + 2 * knobs.intervalMs
    let last = -1
    let lastChange = performance.now()
    await pollUntil(() => {
      const m = moves()
      if (m !== last) { last = m; lastChange = performance.now() }
      return m > 0 && performance.now() - lastChange > quietMs
    }, { timeoutMs: 600_000, intervalMs: 100, what: 'the agents to stop moving VMs' })
    const convergeS = (lastChange - t0) / 1000
    const done = moves()
    const steadyS = 30
    await new Promise((resolve) => setTimeout(resolve, steadyS * 1000))
    const after = measure(balanceView(a.mesh.view.hosts(), a.hostId), knobs.cpuWeight)
    const failures = all.reduce((n, x) => n + (x.balance.balancer?.stats.failures ?? 0), 0)
    log(`agents: ${done} moves (${failures} failed), CV → ${after.cv.toFixed(3)}, quiet after ${convergeS.toFixed(1)} s; ${moves() - done} moves in the next ${steadyS} s (${Math.round(steadyS * 1000 / knobs.intervalMs)} rounds)`)
    return { agents, vms, cvBefore: before.cv, cvAfter: after.cv, moves: done, greedyMoves: plan.moves.length, failures, convergeS, steadyMoves: moves() - done, steadyS }
  } finally {
    await cluster.stop()
  }
}
