/**
 * placement-throughput, the real shape: N `meshvirt agent` processes (simulated hypervisor and
 * network, real libp2p over loopback, real SQLite ledgers), every agent brokering at once through
 * its own control socket, as operators' CLIs would. Figures:
 *  - placements/s aggregate (first request sent → last answer), each request's latency create → committed;
 *  - reserve latency from every agent's own /metrics histogram (meshvirt_placement_reserve_seconds):
 *    the p50 is interpolated inside its bucket, so it is as fine as the buckets are;
 *  - an overcommit audit: what every host's VMs hold (from `vm ls` over the control API) against
 *    what its advert says it may allocate.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { AGENT_INFO_FILE, ControlClient } from '@meshvirt/agent'
import { simVmSpec, type AgentProcess } from '@meshvirt/testkit'
import { percentile } from './harness.js'
import { cpuMs, withAgentCluster } from './agent-processes.js'

/** What every placement-throughput run reports, in one process or one per agent. */
export interface PlacementRun {
  agents: number
  requests: number
  placed: number
  failed: number
  wallMs: number
  perSecond: number
  overcommitViolations: number
}

export interface ProcessRunFigures extends PlacementRun {
  requestP50: number
  requestP99: number
  reserveP50: number
  reserveCount: number
  /** CPU time (user + system) all agent processes spent during the creates, per placement. */
  cpuMsPerPlacement: number
  /** Their CPU time over the wall time, in cores (2 here): 2.0 means the machine was the limit. */
  coresBusy: number
  failures: string[]
}

/** Room for every request (1 vCPU, 256 MiB each): the figure is negotiation speed, not running out. */
const AGENT_ARGS = ['--hypervisor', 'sim', '--network', 'sim', '--cpu-ratio', '64', '--memory-ratio', '16', '--log-level', 'warn']

export async function runProcesses (agents: number, perAgent: number, log: (l: string) => void): Promise<ProcessRunFigures> {
  // The OS picks each agent's metrics port as it binds (agent.json says which): ports picked ahead
  // were taken by the agents' own connections before the 25th agent started (EADDRINUSE).
  const argsOf = (): string[] => [...AGENT_ARGS, '--monitor-listen', '127.0.0.1:0']
  // The agent's own timing (the LAN preset), as operators run it: the test kit's fast 'local' timing
  // (200 ms probes) holds a host dead whenever ten processes saturate two cores, and a broker whose
  // commit host is held dead gives up on it ("it may exist there"): that measured the preset, not load.
  return await withAgentCluster({ prefix: 'mv-bench-place-', count: agents, argsOf, env: { MESHVIRT_TIMING: '' } }, async (started, clients) => {
    const requests = agents * perAgent
    log(`${agents} agent processes up; ${requests} creates, ${perAgent} per agent, all at once`)
    const latencies: number[] = []
    const cpu0 = await cpuMs(started)
    const t0 = performance.now()
    const results = await Promise.allSettled(Array.from({ length: requests }, async (_, i) => {
      const started = performance.now()
      await (clients[i % agents] as ControlClient).call({ idempotencyKey: `tp-key-${i}`, createVm: { spec: simVmSpec(`tp-${i}`, 256) } }, { timeoutMs: 120_000 })
      latencies.push(performance.now() - started)
    }))
    const wallMs = performance.now() - t0
    const cpuSpent = (await cpuMs(started)) - cpu0
    const placed = results.filter((r) => r.status === 'fulfilled').length
    const failures = [...new Set(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)))].slice(0, 5)
    const reserve = await reserveHistogram(started)
    const figures: ProcessRunFigures = {
      agents,
      requests,
      placed,
      failed: requests - placed,
      wallMs,
      perSecond: placed / (wallMs / 1000),
      requestP50: percentile(latencies, 50),
      requestP99: percentile(latencies, 99),
      reserveP50: histogramQuantile(reserve, 0.5) * 1000,
      reserveCount: reserve.at(-1)?.[1] ?? 0,
      cpuMsPerPlacement: cpuSpent / Math.max(1, placed),
      coresBusy: cpuSpent / wallMs,
      overcommitViolations: await overcommitted(clients[0] as ControlClient),
      failures
    }
    if (failures.length > 0) {
      // The agents' own warnings say why (their dir is removed when the run ends).
      const kept = await mkdtemp(join(tmpdir(), 'mv-bench-place-failures-'))
      await Promise.all(started.map(async (a, i) => { await writeFile(join(kept, `host-${i + 1}.log`), a.output()) }))
      log(`failures: ${failures.join(' | ')} (agents' output kept in ${kept})`)
    }
    log(`${agents} processes: ${placed}/${requests} placed in ${wallMs.toFixed(0)} ms = ${figures.perSecond.toFixed(0)}/s; request p50 ${figures.requestP50.toFixed(0)} ms, p99 ${figures.requestP99.toFixed(0)} ms; reserve p50 ≈ ${figures.reserveP50.toFixed(1)} ms; agents' CPU ${figures.cpuMsPerPlacement.toFixed(0)} ms per placement, ${figures.coresBusy.toFixed(2)} cores busy`)
    return figures
  })
}

/** Every agent's reserve histogram, summed: [upper bound in s, cumulative count] pairs, +Inf last. */
async function reserveHistogram (agents: AgentProcess[]): Promise<Array<[number, number]>> {
  const sum = new Map<number, number>()
  await Promise.all(agents.map(async (a) => {
    const token = (await readFile(join(a.dataDir, 'monitor.token'), 'utf8')).trim()
    const { metricsUrl } = JSON.parse(await readFile(join(a.dataDir, AGENT_INFO_FILE), 'utf8')) as { metricsUrl: string }
    const res = await fetch(metricsUrl, { headers: { authorization: `Bearer ${token}` } })
    if (!res.ok) throw new Error(`/metrics of ${a.hostId}: HTTP ${res.status}`)
    for (const m of (await res.text()).matchAll(/^meshvirt_placement_reserve_seconds_bucket\{[^}]*le="([^"]+)"[^}]*\} (\d+)/gm)) {
      const le = m[1] === '+Inf' ? Infinity : Number(m[1])
      sum.set(le, (sum.get(le) ?? 0) + Number(m[2]))
    }
  }))
  return [...sum].sort((x, y) => x[0] - y[0])
}

/** The q-quantile of a cumulative histogram, interpolated linearly inside its bucket (as Prometheus does). */
export function histogramQuantile (buckets: Array<[number, number]>, q: number): number {
  const total = buckets.at(-1)?.[1] ?? 0
  if (total === 0) return NaN
  const rank = q * total
  let prevLe = 0
  let prevCount = 0
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return prevLe
      return prevLe + (le - prevLe) * ((rank - prevCount) / Math.max(1, count - prevCount))
    }
    prevLe = le
    prevCount = count
  }
  return prevLe
}

/** Hosts whose VMs hold more vCPUs or memory than their advert lets them allocate. */
async function overcommitted (client: ControlClient): Promise<number> {
  const hosts = (await client.call({ listHosts: {} })).hostList?.hosts ?? []
  const vms = (await client.call({ listVms: {} }, { timeoutMs: 60_000 })).vmList?.vms ?? []
  let violations = 0
  for (const h of hosts) {
    const c = h.advert?.capacity
    if (c == null) continue
    const mine = vms.filter((v) => v.summary?.owner === h.advert?.hostId)
    const vcpus = mine.reduce((n, v) => n + (v.summary?.resources?.vcpus ?? 0), 0)
    const memory = mine.reduce((n, v) => n + Number(v.summary?.resources?.memoryBytes ?? 0), 0)
    const maxVcpus = (Number(c.total?.vcpus ?? 0) - Number(c.hostReserved?.vcpus ?? 0)) * (c.overcommit?.cpu ?? 1)
    const maxMemory = (Number(c.total?.memoryBytes ?? 0) - Number(c.hostReserved?.memoryBytes ?? 0)) * (c.overcommit?.memory ?? 1)
    if (vcpus > maxVcpus || memory > maxMemory) violations++
  }
  return violations
}
