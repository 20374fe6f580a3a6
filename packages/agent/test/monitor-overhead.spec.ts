import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import type { Monitoring } from '../src/monitor/attach-monitoring.js'
import { simVmSpec, startSimCluster } from '../src/sim-cluster.js'
import { clusterPerTest } from './monitor-harness.js'

const AGENTS = 10
const VMS = 20
const WINDOW_MS = 8_000
/** Prometheus' usual scrape interval; the per-scrape cost is measured in a burst and spread over it. */
const SCRAPE_INTERVAL_S = 15
const SCRAPE_ROUNDS = 20
const OUTPUT = fileURLToPath(new URL('../../../test-results/', import.meta.url))

/** CPU of this whole process over `ms` of idling, as a fraction of one core. */
async function cpuOver (ms: number): Promise<number> {
  const before = process.cpuUsage()
  const t0 = performance.now()
  await new Promise((resolve) => setTimeout(resolve, ms))
  const used = process.cpuUsage(before)
  return (used.user + used.system) / 1000 / (performance.now() - t0)
}

/** CPU seconds `work` takes (this process; includes everything else running meanwhile, so an upper bound). */
async function cpuSecondsOf (work: () => Promise<void>): Promise<number> {
  const before = process.cpuUsage()
  await work()
  const used = process.cpuUsage(before)
  return (used.user + used.system) / 1e6
}

describe('monitoring overhead', () => {
  const clusters = clusterPerTest()

  it(`an idle agent with metrics and events on uses < 2% of a core (${AGENTS} agents, ${VMS} VMs, simulated hypervisor)`, async () => {
    // LAN timing: what a real agent runs with (the local test preset heartbeats far more often).
    const c = clusters.track(await startSimCluster(Array.from({ length: AGENTS }, () => ({ vcpus: 16, memoryMiB: 8192 })), { timing: 'lan', readyTimeoutMs: 60_000 }))
    await Promise.all(Array.from({ length: VMS }, async (_, i) => await c.agents[i % AGENTS]!.broker.create(simVmSpec(`idle-${i}`), `idle-${i}`)))
    const settle = async (): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, 3_000)) }
    await settle()
    const without = await cpuOver(WINDOW_MS)

    // Agents that attach monitoring themselves had it on in the first window too: then both windows measure it.
    const alreadyOn = c.agents.every((a) => (a as { monitoring?: Monitoring }).monitoring !== undefined)
    const monitors = await clusters.monitor(c)
    await settle()
    const withMonitoring = await cpuOver(WINDOW_MS)
    // One scrape of one agent, server and client side both (the client runs in this process too).
    const scrapeAll = async (): Promise<void> => {
      await Promise.all(monitors.map(async (m) => {
        const res = await fetch(m.metricsUrl as string, { headers: { authorization: `Bearer ${m.token as string}` } })
        expect(res.status).toBe(200)
        await res.text()
      }))
    }
    await scrapeAll() // warm up (first-time code paths, connection set-up)
    const scrapeCpuS = await cpuSecondsOf(async () => { for (let r = 0; r < SCRAPE_ROUNDS; r++) await scrapeAll() }) / (SCRAPE_ROUNDS * AGENTS)

    const perAgentIdle = withMonitoring / AGENTS
    const result = {
      agents: AGENTS,
      vms: VMS,
      windowMs: WINDOW_MS,
      [alreadyOn ? 'perAgentCpuFirstWindow' : 'perAgentCpuWithoutMonitoring']: without / AGENTS,
      perAgentCpuWithMonitoringIdle: perAgentIdle,
      cpuMsPerScrape: scrapeCpuS * 1000,
      scrapeIntervalS: SCRAPE_INTERVAL_S,
      perAgentCpuWithMonitoringAndScrapes: perAgentIdle + scrapeCpuS / SCRAPE_INTERVAL_S
    }
    console.log('monitor overhead', JSON.stringify(result))
    await mkdir(OUTPUT, { recursive: true })
    await writeFile(join(OUTPUT, 'monitor-overhead.json'), JSON.stringify(result, null, 2) + '\n')
    expect(result.perAgentCpuWithMonitoringAndScrapes).toBeLessThan(0.02)
  }, 120_000)
})
