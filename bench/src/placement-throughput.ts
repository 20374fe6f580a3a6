/**
 * placement-throughput: N real agents (libp2p over loopback, real negotiation, SQLite ledgers)
 * in this process with the SIMULATED hypervisor, every agent brokering at once.
 *  - placements/s aggregate, request → Reserved and → Committed latency (p50/p99),
 *  - refusals and retries, and an overcommit audit of every ledger after every commit (must be 0).
 * All N agents share this process's event loop (and 2 cores): per-agent figures on real hosts,
 * one agent per machine, are better than these.
 */
import { performance } from 'node:perf_hooks'
import type { PlacementTiming } from '@meshvirt/agent'
import { simVmSpec, startSimCluster } from '@meshvirt/testkit'
import { percentile, type Benchmark, type Metric } from './harness.js'

interface RunFigures {
  agents: number
  requests: number
  placed: number
  failed: number
  wallMs: number
  perSecond: number
  reserveP50: number
  reserveP99: number
  commitP50: number
  commitP99: number
  refusals: number
  retries: number
  overcommitViolations: number
}

async function run (agents: number, perAgent: number, log: (l: string) => void): Promise<RunFigures> {
  // Room for every request: the figure is about negotiation speed, not about running out.
  const cluster = await startSimCluster(Array.from({ length: agents }, () => ({ vcpus: 256, memoryMiB: 256 * 1024 })), { timing: 'lan', readyTimeoutMs: 180_000 })
  try {
    const timings: PlacementTiming[] = []
    let violations = 0
    for (const a of cluster.agents) {
      a.events.on('placement:done', (t) => { timings.push(t) })
      a.events.on('vm:committed', () => { if (a.ledger.audit().length > 0) violations++ })
    }
    const requests = agents * perAgent
    log(`${agents} agents up; ${requests} creates, ${perAgent} per broker, all at once`)
    const t0 = performance.now()
    const results = await Promise.allSettled(Array.from({ length: requests }, async (_, i) => {
      const broker = cluster.agents[i % agents]!
      await broker.broker.create(simVmSpec(`tp-${i}`, 256), `tp-key-${i}`)
    }))
    const wallMs = performance.now() - t0
    const placed = results.filter((r) => r.status === 'fulfilled').length
    for (const a of cluster.agents) if (a.ledger.audit().length > 0) violations++
    const reserve = timings.map((t) => t.reserveMs)
    const commit = timings.map((t) => t.commitMs)
    const stats = cluster.agents.map((a) => a.broker.stats)
    const failures = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))
    if (failures.length > 0) log(`failures: ${[...new Set(failures)].slice(0, 3).join(' | ')}`)
    const figures: RunFigures = {
      agents,
      requests,
      placed,
      failed: requests - placed,
      wallMs,
      perSecond: placed / (wallMs / 1000),
      reserveP50: percentile(reserve, 50),
      reserveP99: percentile(reserve, 99),
      commitP50: percentile(commit, 50),
      commitP99: percentile(commit, 99),
      refusals: stats.reduce((n, s) => n + s.refusals, 0),
      retries: stats.reduce((n, s) => n + s.attempts, 0) - placed,
      overcommitViolations: violations
    }
    log(`${agents} agents: ${placed}/${requests} placed in ${wallMs.toFixed(0)} ms = ${figures.perSecond.toFixed(0)}/s; reserve p50 ${figures.reserveP50.toFixed(1)} ms, commit p50 ${figures.commitP50.toFixed(1)} ms; ${figures.refusals} refusals`)
    return figures
  } finally {
    await cluster.stop()
  }
}

export const placementThroughput: Benchmark = {
  name: 'placement-throughput',
  description: 'N in-process agents (simulated hypervisor) all brokering at once: placements/s, reserve latency, overcommit audit',
  async run ({ quick, log }) {
    // 50 agents in one process did not finish joining within 3 minutes here (each agent's gossip
    // and timers share one event loop), so the larger run is 25; per-agent processes would scale.
    const runs: RunFigures[] = []
    const failures: Array<{ agents: number, error: string }> = []
    for (const n of quick ? [10] : [10, 25]) {
      try {
        runs.push(await run(n, quick ? 10 : 20, log))
      } catch (err) {
        failures.push({ agents: n, error: (err as Error).message })
        log(`${n} agents: run failed: ${(err as Error).message}`)
      }
    }
    if (runs.length === 0) throw new Error(`every run failed: ${JSON.stringify(failures)}`)
    const big = runs.at(-1) as RunFigures
    const metrics: Record<string, Metric> = {
      reserve_p50_ms: { value: big.reserveP50, unit: 'ms', target: '< 10' },
      reserve_p99_ms: { value: big.reserveP99, unit: 'ms' },
      commit_p50_ms: { value: big.commitP50, unit: 'ms' },
      commit_p99_ms: { value: big.commitP99, unit: 'ms' },
      placements_per_s: { value: big.perSecond, unit: '1/s', target: '≥ 1000' },
      overcommit_violations: { value: runs.reduce((n, r) => n + r.overcommitViolations, 0), unit: 'count', target: '0' },
      refusals: { value: big.refusals, unit: 'count' },
      retries: { value: big.retries, unit: 'count' }
    }
    for (const r of runs) metrics[`placements_per_s_${r.agents}`] = { value: r.perSecond, unit: '1/s' }
    return { metrics, details: { runs, failures, note: `the keys without a suffix are the ${big.agents}-agent run; all agents share one process on this machine` }, accel: 'sim' }
  }
}
