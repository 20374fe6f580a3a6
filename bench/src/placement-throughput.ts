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
import { runProcesses, type PlacementRun, type ProcessRunFigures } from './placement-processes.js'
import { vmSpecFromWire } from '@meshvirt/agent'

interface RunFigures extends PlacementRun {
  reserveP50: number
  reserveP99: number
  commitP50: number
  commitP99: number
  refusals: number
  retries: number
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
      await broker.broker.create(vmSpecFromWire(simVmSpec(`tp-${i}`, 256)), `tp-key-${i}`)
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
  description: 'N agents (simulated hypervisor) all brokering at once: one process per agent (the real shape), then N in one process; placements/s, latency, overcommit audit',
  async run ({ quick, log }) {
    const metrics: Record<string, Metric> = {}
    const failures: Array<{ agents: number, mode: string, error: string }> = []
    // The real shape (issue 18): every agent its own process, driven through its control socket.
    const processRuns: ProcessRunFigures[] = []
    for (const n of quick ? [10] : [10, 25]) {
      try {
        const r = await runProcesses(n, quick ? 10 : 20, log)
        processRuns.push(r)
        const sfx = n === 10 ? '' : `_${n}`
        metrics[`placements_per_s${sfx}`] = { value: r.perSecond, unit: '1/s', ...(n === 10 ? { target: '≥ 1000' } : {}) }
        metrics[`reserve_p50_ms${sfx}`] = { value: r.reserveP50, unit: 'ms', target: '< 10' }
        metrics[`request_p99_ms${sfx}`] = { value: r.requestP99, unit: 'ms' }
        metrics[`failed_requests${sfx}`] = { value: r.failed, unit: 'count', target: '0' }
        metrics[`overcommit_violations${sfx}`] = { value: r.overcommitViolations, unit: 'count', target: '0' }
        metrics[`agent_cpu_ms_per_placement${sfx}`] = { value: r.cpuMsPerPlacement, unit: 'ms' }
      } catch (err) {
        failures.push({ agents: n, mode: 'processes', error: (err as Error).message })
        log(`${n} agent processes: run failed: ${(err as Error).message}`)
      }
    }
    // The earlier shape, kept for comparison: N agents sharing this process's event loop.
    // 50 agents in one process did not finish joining within 3 minutes here, so the larger run is 25.
    const runs: RunFigures[] = []
    for (const n of quick ? [10] : [10, 25]) {
      try {
        runs.push(await run(n, quick ? 10 : 20, log))
      } catch (err) {
        failures.push({ agents: n, mode: 'in-process', error: (err as Error).message })
        log(`${n} agents in one process: run failed: ${(err as Error).message}`)
      }
    }
    if (runs.length === 0 && processRuns.length === 0) throw new Error(`every run failed: ${JSON.stringify(failures)}`)
    for (const r of runs) {
      metrics[`in_process_placements_per_s_${r.agents}`] = { value: r.perSecond, unit: '1/s' }
      metrics[`in_process_reserve_p50_ms_${r.agents}`] = { value: r.reserveP50, unit: 'ms' }
      metrics[`in_process_commit_p50_ms_${r.agents}`] = { value: r.commitP50, unit: 'ms' }
      metrics[`in_process_overcommit_violations_${r.agents}`] = { value: r.overcommitViolations, unit: 'count', target: '0' }
    }
    return {
      metrics,
      details: { processRuns, runs, failures, note: 'keys without a prefix: one agent process each (N = 10 unsuffixed, _25); in_process_*: all agents in one process' },
      accel: 'sim'
    }
  }
}
