/**
 * api: the HTTPS API's answer rate and latency. One real agent process (`meshvirt agent
 * --hypervisor sim --api-listen 127.0.0.1:0`), one VM; this process is the load: N clients, each
 * its own TLS connection (keep-alive) and token check per request, each sending `GET /v1/vms/NAME`
 * back to back for a fixed window.
 *  - api_rps_vm_show: answers per second at 100 clients;
 *  - api_p99_ms_vm_show: the 99th percentile latency at 100 clients (target < 20 ms).
 * The clients and the agent share this machine's cores, so the figures include the load's own cost.
 */
import { readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { ApiClient, ControlClient, writeClusterKey } from '@meshvirt/agent'
import { simVmSpec, startAgentProcess } from '@meshvirt/testkit'
import type { Benchmark } from './harness.js'

interface Run { clients: number, requests: number, rps: number, p50: number, p99: number, max: number, failures: number, agentCores: number, loadCores: number }

/** A process's CPU time so far (user + system), in ms, from /proc. */
function cpuMsOf (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

async function load (url: string, token: string, clients: number, windowMs: number, agentPid: number): Promise<Run> {
  const pool = Array.from({ length: clients }, () => new ApiClient(url, token))
  // Warm-up: each connection's handshake happens before the window.
  await Promise.all(pool.map(async (c) => await c.send('GET', '/v1/vms/bench-1')))
  const latencies: number[] = []
  let failures = 0
  const end = performance.now() + windowMs
  const t0 = performance.now()
  const agentCpu0 = cpuMsOf(agentPid)
  const loadCpu0 = process.cpuUsage()
  await Promise.all(pool.map(async (c) => {
    while (performance.now() < end) {
      const s = performance.now()
      const r = await c.send('GET', '/v1/vms/bench-1')
      latencies.push(performance.now() - s)
      if (r.status !== 200) failures++
    }
  }))
  const elapsed = performance.now() - t0
  const agentCores = (cpuMsOf(agentPid) - agentCpu0) / elapsed
  const loadCpu = process.cpuUsage(loadCpu0)
  const loadCores = (loadCpu.user + loadCpu.system) / 1000 / elapsed
  for (const c of pool) c.close()
  latencies.sort((a, b) => a - b)
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0
  return { clients, requests: latencies.length, rps: latencies.length / (elapsed / 1000), p50: at(0.5), p99: at(0.99), max: latencies.at(-1) ?? 0, failures, agentCores, loadCores }
}

export const api: Benchmark = {
  name: 'api',
  description: 'GET one VM over HTTPS with a token: answers/s and p99 at 1, 10 and 100 clients (one sim agent process)',
  run: async ({ quick, log }) => {
    const dir = await mkdtemp(join(tmpdir(), 'mv-bench-api-'))
    const key = join(dir, 'cluster.key')
    await writeClusterKey(key)
    const agent = await startAgentProcess(['--hypervisor', 'sim', '--network', 'sim', '-l', '/ip4/127.0.0.1/tcp/0', '-k', key, '--api-listen', '127.0.0.1:0', '--monitor-listen', 'off'], { dataDir: join(dir, 'h1'), env: { MESHVIRT_TIMING: 'lan' } })
    try {
      const control = new ControlClient(join(dir, 'h1', 'control.sock'))
      await control.call({ idempotencyKey: 'bench-1', createVm: { spec: simVmSpec('bench-1') } })
      const token = (await control.call({ addUser: { name: 'bench', role: 'viewer' } })).userToken?.token ?? ''
      const url = (JSON.parse(await readFile(join(dir, 'h1', 'agent.json'), 'utf8')) as { apiUrl: string }).apiUrl
      const windowMs = quick ? 3_000 : 10_000
      const runs: Run[] = []
      for (const clients of [1, 10, 100]) {
        const r = await load(url, token, clients, windowMs, agent.pid)
        log(`${clients} clients: ${r.requests} answers in ${windowMs} ms = ${r.rps.toFixed(0)}/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, max ${r.max.toFixed(1)} ms, ${r.failures} not 200; CPU: agent ${r.agentCores.toFixed(2)}, load ${r.loadCores.toFixed(2)} cores`)
        runs.push(r)
      }
      const at100 = runs.at(-1) as Run
      if (runs.some((r) => r.failures > 0)) throw new Error(`some answers were not 200: ${JSON.stringify(runs)}`)
      return {
        metrics: {
          api_rps_vm_show: { value: Math.round(at100.rps), unit: '/s', target: 'report' },
          api_p99_ms_vm_show: { value: Number(at100.p99.toFixed(2)), unit: 'ms', target: '< 20' }
        },
        details: { windowMs, runs, loadavg: loadavg()[0], setup: 'one agent process (sim hypervisor), the load in the bench process, both on this machine' }
      }
    } finally {
      await agent.stop()
      await rm(dir, { recursive: true, force: true })
    }
  }
}
