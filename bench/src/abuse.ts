/**
 * abuse: what legitimate work keeps getting done while the cluster is abused (issue 22).
 * N in-process agents (simulated hypervisor, real libp2p on loopback) place a storm of VMs three
 * times: quietly; while a process WITHOUT the cluster key holds idle TCP connections to every agent
 * from 127.0.0.2 (the pre-auth flood); and while an insider WITH the key parks nearly complete
 * 4 MiB requests on every agent and sends a stream of junk requests (the insider flood).
 * Figures: placements/s and per-create latency p50/p99 for each, and what each bound refused.
 */
import { connect, type Socket } from 'node:net'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { byteStream } from '@libp2p/utils'
import { NEGOTIATE_PROTOCOL, type RunningAgent } from '@meshvirt/agent'
import { createMeshNode, generateIdentity, type MeshNode } from '@meshvirt/mesh'
import { simVmSpec, startSimCluster, type SimCluster } from '@meshvirt/testkit'
import { percentile, type Benchmark, type Metric } from './harness.js'
import { vmSpecFromWire } from '@meshvirt/agent'

const MIB = 2 ** 20

interface Phase { phase: string, placed: number, failed: number, wallMs: number, perSecond: number, p50Ms: number, p99Ms: number, refusedPreAuth: number, refusedRequests: number }

/** `count` creates through every agent but the first, `concurrency` at a time: placements/s and latency. */
async function storm (cluster: SimCluster, tag: string, count: number, concurrency: number): Promise<{ placed: number, failed: number, wallMs: number, latencies: number[], errors: string[] }> {
  const brokers = cluster.agents.slice(1)
  const latencies: number[] = []
  let next = 0
  let failed = 0
  const errors: string[] = []
  const t0 = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let i = next++; i < count; i = next++) {
      const started = performance.now()
      try {
        await (brokers[i % brokers.length] as RunningAgent).broker.create(vmSpecFromWire(simVmSpec(`${tag}-${i}`, 64)), `${tag}-key-${i}`)
        latencies.push(performance.now() - started)
      } catch (err) {
        failed++
        errors.push((err as Error).message)
      }
    }
  }))
  return { placed: latencies.length, failed, wallMs: performance.now() - t0, latencies, errors }
}

/** Idle connections from 127.0.0.2 that never send a byte, each reopened 200 ms after it is closed. */
function preAuthFlood (ports: number[], perPort: number): { stop: () => void } {
  let on = true
  const sockets = new Set<Socket>()
  const open = (port: number): void => {
    if (!on) return
    const s = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' })
    sockets.add(s)
    s.on('error', () => {})
    s.on('close', () => { sockets.delete(s); setTimeout(() => { open(port) }, 200) })
  }
  for (const port of ports) for (let i = 0; i < perPort; i++) open(port)
  return { stop: () => { on = false; for (const s of sockets) s.destroy() } }
}

/** An insider: parks `parked` nearly complete 4 MiB requests on each agent, then sends junk requests until stopped. */
async function insiderFlood (insider: MeshNode, targets: RunningAgent[], parked: number): Promise<{ stop: () => Promise<void>, sent: () => number }> {
  const body = new Uint8Array(4 * MIB - 1)
  const prefix = Uint8Array.from([0x80, 0x80, 0x80, 0x02]) // a 4 MiB length
  await Promise.all(targets.flatMap((t) => Array.from({ length: parked }, async () => {
    try {
      const bytes = byteStream(await insider.libp2p.dialProtocol(t.mesh.peerId, NEGOTIATE_PROTOCOL))
      await bytes.write(prefix)
      for (let at = 0; at < body.byteLength; at += 256 * 1024) await bytes.write(body.subarray(at, Math.min(body.byteLength, at + 256 * 1024)))
    } catch {
      // Refused over the budget: the victim reset the stream.
    }
  })))
  const state = { on: true }
  let sent = 0
  const junk = new Uint8Array(64 * 1024).fill(0xff)
  const loops = targets.map(async (t) => {
    while (state.on) {
      await insider.request(t.hostId, NEGOTIATE_PROTOCOL, junk, { timeoutMs: 2_000 }).catch(() => {})
      sent++
    }
  })
  return { stop: async () => { state.on = false; await Promise.all(loops) }, sent: () => sent }
}

function refusedRequests (cluster: SimCluster): number {
  return cluster.agents.reduce((n, a) => { const r = a.mesh.stats().requestBuffer?.refused; return n + (r?.peer ?? 0) + (r?.total ?? 0) }, 0)
}

function refusedPreAuth (cluster: SimCluster): number {
  return cluster.agents.reduce((n, a) => n + (a.mesh.stats().inbound?.refusedPerAddress ?? 0), 0)
}

export const abuse: Benchmark = {
  name: 'abuse',
  description: 'placements/s and p99 while a no-key connection flood and an insider stream flood run, against the same without them',
  async run ({ quick, log }) {
    const agents = quick ? 4 : 5
    const count = quick ? 60 : 150
    const cluster = await startSimCluster(Array.from({ length: agents }, () => ({ vcpus: 256, memoryMiB: 256 * 1024 })), { timing: 'lan', readyTimeoutMs: 180_000 })
    const phases: Phase[] = []
    let insider: MeshNode | undefined
    try {
      const measure = async (phase: string): Promise<void> => {
        const before = { preAuth: refusedPreAuth(cluster), requests: refusedRequests(cluster) }
        const r = await storm(cluster, phase.replace(/[^a-z]+/g, '-'), count, 10)
        if (r.errors.length > 0) log(`${phase}: failures: ${[...new Set(r.errors)].slice(0, 3).join(' | ')}`)
        const p: Phase = {
          phase,
          placed: r.placed,
          failed: r.failed,
          wallMs: r.wallMs,
          perSecond: r.placed / (r.wallMs / 1000),
          p50Ms: percentile(r.latencies, 50),
          p99Ms: percentile(r.latencies, 99),
          refusedPreAuth: refusedPreAuth(cluster) - before.preAuth,
          refusedRequests: refusedRequests(cluster) - before.requests
        }
        phases.push(p)
        log(`${phase}: ${p.placed}/${count} placed, ${p.perSecond.toFixed(1)}/s, p50 ${p.p50Ms.toFixed(0)} ms, p99 ${p.p99Ms.toFixed(0)} ms; refused ${p.refusedPreAuth} pre-auth connections, ${p.refusedRequests} requests`)
      }
      await measure('quiet')

      const ports = cluster.agents.map((a) => Number(/\/tcp\/(\d+)/.exec(a.addrs[0] as string)?.[1]))
      const flood = preAuthFlood(ports, quick ? 50 : 100)
      await new Promise((resolve) => setTimeout(resolve, 2_000))
      try { await measure('no-key flood') } finally { flood.stop() }

      insider = await createMeshNode({
        privateKey: (await generateIdentity()).privateKey,
        listen: ['/ip4/127.0.0.1/tcp/0'],
        bootstrap: [cluster.agents[0]?.addrs[0] as string],
        clusterKey: await readFile(join(cluster.dir, 'cluster.key')),
        clusterName: 'default',
        timing: 'lan',
        advert: { capacity: { total: { vcpus: 0, memoryBytes: 0, diskBytes: 0 }, hostReserved: { vcpus: 0, memoryBytes: 0, diskBytes: 0 }, allocated: { vcpus: 0, memoryBytes: 0, diskBytes: 0 }, reservations: { vcpus: 0, memoryBytes: 0, diskBytes: 0 }, overcommit: { cpu: 1, memory: 1, disk: 1 } }, labels: {} }
      })
      await new Promise((resolve) => setTimeout(resolve, 3_000))
      const stream = await insiderFlood(insider, cluster.agents, quick ? 8 : 20)
      try { await measure('insider flood') } finally { await stream.stop() }
      log(`insider sent ${stream.sent()} junk requests during its phase`)
    } finally {
      await insider?.stop()
      await cluster.stop()
    }
    const quiet = phases[0] as Phase
    const metrics: Record<string, Metric> = {}
    for (const p of phases) {
      const key = p.phase.replace(/[^a-z]+/g, '_')
      metrics[`placements_per_s_${key}`] = { value: p.perSecond, unit: '1/s' }
      metrics[`create_p99_ms_${key}`] = { value: p.p99Ms, unit: 'ms' }
      metrics[`failed_${key}`] = { value: p.failed, unit: 'count' }
      if (p !== quiet) metrics[`throughput_ratio_${key}`] = { value: p.perSecond / quiet.perSecond, unit: 'ratio' }
    }
    return { metrics, details: { agents, creates: count, phases, note: 'all agents, the floods and the brokers share this process and 2 cores; the no-key flood comes from 127.0.0.2' }, accel: 'sim' }
  }
}
