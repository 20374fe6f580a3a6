/**
 * N mesh hosts in this process over loopback TCP, and the measurements the gossip benchmark
 * takes on them. Every host shares one core here, so the figures are an upper bound of what
 * N hosts on N machines would see.
 */
import { createMeshNode, generateClusterKey, generateIdentity, type MeshNode, type MeshTiming, type TimingPreset } from '@meshvirt/mesh'
import { markedCapacity } from './gossip-agent.js'

/** A round that has not converged by then counts as this long (and as missed). */
export const ROUND_TIMEOUT_MS = 5_000
/** Idle time between rounds, so rounds do not overlap. */
const ROUND_GAP_MS = 50

export const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

export async function waitFor (condition: () => boolean, timeoutMs: number, intervalMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) return false
    await sleep(intervalMs)
  }
  return true
}

export class InProcessCluster {
  readonly nodes: MeshNode[] = []
  readonly clusterKey = generateClusterKey()

  constructor (private readonly timing: TimingPreset | Partial<MeshTiming>) {}

  /**
   * Starts `n` hosts, all bootstrapping off the first (a star the connector then dissolves),
   * `staggerMs` apart: a crowd of simultaneous handshakes on one shared core takes seconds.
   */
  async start (n: number, staggerMs = 0): Promise<number> {
    const t0 = Date.now()
    for (let i = 0; i < n; i++) {
      if (i > 0 && staggerMs > 0) await sleep(staggerMs)
      const id = await generateIdentity()
      const first = this.nodes[0]
      this.nodes.push(await createMeshNode({
        privateKey: id.privateKey,
        listen: ['/ip4/127.0.0.1/tcp/0'],
        bootstrap: first === undefined ? [] : [first.multiaddrs()[0] ?? ''],
        clusterKey: this.clusterKey,
        clusterName: 'bench',
        timing: this.timing,
        advert: { capacity: markedCapacity(0), labels: { zone: `z${i % 3}` } }
      }))
    }
    return Date.now() - t0
  }

  /** Time until every view holds every host alive; -1 if not within `timeoutMs`. */
  async converge (timeoutMs: number): Promise<number> {
    const t0 = Date.now()
    const n = this.running().length
    const ok = await waitFor(() => this.running().every((node) => node.view.hosts().filter((h) => h.liveness === 'alive').length === n), timeoutMs, 100)
    return ok ? Date.now() - t0 : -1
  }

  running (): MeshNode[] {
    return this.nodes.filter((n) => n.libp2p.status === 'started')
  }

  /**
   * `rounds` capacity changes at random hosts, one at a time: for each, the time until every
   * other view holds it (`convergence`) and each single delivery (`deliveries`).
   */
  async measureConvergence (rounds: number, firstMarker: number, progress?: (round: number, ms: number) => void): Promise<{ convergence: number[], deliveries: number[], missed: number }> {
    const nodes = this.running()
    const convergence: number[] = []
    const deliveries: number[] = []
    let missed = 0
    for (let r = 0; r < rounds; r++) {
      const marker = firstMarker + r
      const source = nodes[Math.floor(Math.random() * nodes.length)] as MeshNode
      const seen: number[] = []
      const t0 = performance.now()
      const unsubscribe = nodes.filter((n) => n !== source).map((n) => n.view.subscribe((e) => {
        // 'joined' too: with long heartbeats a host may learn of the source through this very change.
        if ((e.type === 'updated' || e.type === 'joined') && e.host.hostId === source.hostId && e.host.advert.capacity.allocated.vcpus === marker) seen.push(performance.now() - t0)
      }))
      source.updateAdvert({ capacity: markedCapacity(marker) })
      const ok = await waitFor(() => seen.length === nodes.length - 1, ROUND_TIMEOUT_MS, 5)
      for (const u of unsubscribe) u()
      deliveries.push(...seen)
      if (ok) convergence.push(Math.max(...seen))
      else {
        missed++
        convergence.push(ROUND_TIMEOUT_MS)
      }
      progress?.(r, convergence[convergence.length - 1] ?? 0)
      await sleep(ROUND_GAP_MS)
    }
    return { convergence, deliveries, missed }
  }

  /**
   * Stops one host (not the first) and times, at every host that knew it, when it became
   * suspect and dead. Returns the time until the last host declared it dead, and the spread of both.
   */
  async measureFailureDetection (timeoutMs: number): Promise<{ observers: number, deadAllMs: number, suspectFirstMs: number, suspectLastMs: number, deadFirstMs: number } | undefined> {
    const nodes = this.running()
    const victim = nodes[1 + Math.floor(Math.random() * (nodes.length - 1))] as MeshNode
    // Only hosts that know the victim can declare it dead (at 100 hosts with long heartbeats
    // some views are still filling when a host is stopped).
    const others = nodes.filter((n) => n !== victim && n.view.get(victim.hostId)?.liveness === 'alive')
    const suspectAt: number[] = []
    const deadAt: number[] = []
    const t0 = performance.now()
    const unsubscribe = others.map((n) => n.view.subscribe((e) => {
      if (e.host.hostId !== victim.hostId) return
      if (e.type === 'suspect') suspectAt.push(performance.now() - t0)
      if (e.type === 'dead') deadAt.push(performance.now() - t0)
    }))
    await victim.stop()
    const ok = await waitFor(() => deadAt.length === others.length, timeoutMs, 20)
    for (const u of unsubscribe) u()
    if (!ok) return undefined
    return { observers: others.length, deadAllMs: Math.max(...deadAt), deadFirstMs: Math.min(...deadAt), suspectFirstMs: Math.min(...suspectAt), suspectLastMs: Math.max(...suspectAt) }
  }

  /** Process CPU (cores busy) and RSS while the cluster only heartbeats. */
  async measureIdle (ms: number): Promise<{ cpuCores: number, rssBytes: number, heapUsedBytes: number }> {
    const c0 = process.cpuUsage()
    const t0 = performance.now()
    await sleep(ms)
    const c = process.cpuUsage(c0)
    const wallUs = (performance.now() - t0) * 1000
    const mem = process.memoryUsage()
    return { cpuCores: (c.user + c.system) / wallUs, rssBytes: mem.rss, heapUsedBytes: mem.heapUsed }
  }

  stats (): { rejected: number, accepted: number, staleIgnored: number, avgPeers: number } {
    const nodes = this.running()
    let rejected = 0
    let accepted = 0
    let stale = 0
    let peers = 0
    for (const n of nodes) {
      const s = n.stats()
      rejected += Object.values(s.adverts.rejected).reduce((a, b) => a + b, 0)
      accepted += s.adverts.accepted
      stale += s.adverts.ignored.stale
      peers += s.peers
    }
    return { rejected, accepted, staleIgnored: stale, avgPeers: peers / Math.max(1, nodes.length) }
  }

  async stop (): Promise<void> {
    await Promise.all(this.nodes.map(async (n) => { await n.stop() }))
  }
}
