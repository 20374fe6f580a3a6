/**
 * monitor-overhead: what metrics and events cost an idle agent. Ten real agents in this process
 * (real libp2p on loopback, SQLite ledgers, the simulated hypervisor), LAN timing (what a real agent
 * runs with), 20 VMs placed, then:
 *  - per_agent_cpu_idle: this process's CPU over an idle window, per agent, as a fraction of a core
 *    (every agent has monitoring on: runAgent attaches it, so this is the agent's whole idle cost,
 *    an upper bound of the monitoring part);
 *  - cpu_ms_per_scrape: one /metrics scrape, server and client side (both in this process);
 *  - per_agent_cpu_with_scrapes: idle plus one scrape every 15 s (Prometheus' usual interval).
 * The process's CPU includes everything else it runs, so on a loaded machine the figures rise.
 */
import { loadavg } from 'node:os'
import { simVmSpec, startSimCluster } from '@meshvirt/testkit'
import type { Benchmark } from './harness.js'
import { vmSpecFromWire } from '@meshvirt/agent'

const SCRAPE_INTERVAL_S = 15

/** This process's CPU over `ms` of idling, as a fraction of one core. */
async function cpuOver (ms: number): Promise<number> {
  const before = process.cpuUsage()
  const t0 = performance.now()
  await new Promise((resolve) => setTimeout(resolve, ms))
  const used = process.cpuUsage(before)
  return (used.user + used.system) / 1000 / (performance.now() - t0)
}

export const monitorOverhead: Benchmark = {
  name: 'monitor-overhead',
  description: 'idle CPU of an agent with metrics and events on, and the cost of a /metrics scrape (10 sim agents, 20 VMs)',
  run: async ({ quick, log }) => {
    const agents = 10
    const vms = 20
    const windowMs = quick ? 4_000 : 8_000
    const scrapeRounds = quick ? 5 : 20
    const load = [loadavg()[0] ?? 0]
    const c = await startSimCluster(Array.from({ length: agents }, () => ({ vcpus: 16, memoryMiB: 8192 })), { timing: 'lan', readyTimeoutMs: 60_000 })
    try {
      await Promise.all(Array.from({ length: vms }, async (_, i) => await c.agents[i % agents]!.broker.create(vmSpecFromWire(simVmSpec(`idle-${i}`)), `idle-${i}`)))
      await new Promise((resolve) => setTimeout(resolve, 3_000))
      const idle = await cpuOver(windowMs) / agents
      log(`idle window ${windowMs} ms: ${(idle * 100).toFixed(2)} % of a core per agent`)

      const monitors = c.agents.map((a) => a.monitoring)
      const scrapeAll = async (): Promise<void> => {
        await Promise.all(monitors.map(async (m) => {
          if (m.metricsUrl === undefined || m.token === undefined) throw new Error('an agent has no /metrics endpoint')
          const res = await fetch(m.metricsUrl, { headers: { authorization: `Bearer ${m.token}` } })
          if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`)
          await res.text()
        }))
      }
      await scrapeAll() // warm-up: first-time code paths, connection set-up
      const before = process.cpuUsage()
      for (let r = 0; r < scrapeRounds; r++) await scrapeAll()
      const used = process.cpuUsage(before)
      const cpuMsPerScrape = (used.user + used.system) / 1000 / (scrapeRounds * agents)
      load.push(loadavg()[0] ?? 0)
      return {
        metrics: {
          per_agent_cpu_idle: { value: idle, unit: 'core', target: '< 0.02' },
          cpu_ms_per_scrape: { value: cpuMsPerScrape, unit: 'ms' },
          per_agent_cpu_with_scrapes: { value: idle + cpuMsPerScrape / 1000 / SCRAPE_INTERVAL_S, unit: 'core', target: '< 0.02' }
        },
        details: { agents, vms, windowMs, scrapeRounds, scrapeIntervalS: SCRAPE_INTERVAL_S, loadavg1: load }
      }
    } finally {
      await c.stop()
    }
  }
}
