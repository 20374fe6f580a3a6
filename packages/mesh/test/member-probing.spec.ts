import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { LOCAL_TEST_TIMING, type MeshNode, type MeshTiming } from '../src/index.js'
import { pollUntil } from '@meshvirt/testkit/poll'
import { TestCluster } from './helpers.js'

const MAIN = fileURLToPath(new URL('./fixtures/mesh-node-main.mjs', import.meta.url))
/** The frozen host's heartbeat: its missed heartbeats alone would take 2–3 of these to notice. */
const SLOW_HEARTBEAT_MS = 15_000

/**
 * A host that falls silent drops no connection (power lost, hung kernel, frozen process): only
 * member probing finds it before its heartbeats are missed. Here a real node in its own process is
 * frozen with SIGSTOP, its TCP connections left open.
 */
describe('member probing finds a silent host', () => {
  const cluster = new TestCluster()
  let child: ChildProcess | undefined
  afterEach(async () => {
    if (child?.pid !== undefined && child.exitCode === null) {
      process.kill(child.pid, 'SIGCONT')
      process.kill(child.pid, 'SIGKILL')
      await once(child, 'exit')
    }
    child = undefined
    await cluster.stopAll()
  })

  async function frozenHost (memberProbeIntervalMs: number): Promise<{ nodes: MeshNode[], frozenId: string }> {
    const timing: Partial<MeshTiming> = { ...LOCAL_TEST_TIMING, memberProbeIntervalMs }
    const nodes = [await cluster.start(undefined, { timing }), await cluster.start(undefined, { timing }), await cluster.start(undefined, { timing })]
    child = spawn(process.execPath, [MAIN], {
      env: { ...process.env, MV_BOOTSTRAP: nodes[0]?.multiaddrs()[0], MV_CLUSTER_KEY: Buffer.from(cluster.clusterKey).toString('hex'), MV_TIMING: JSON.stringify({ ...LOCAL_TEST_TIMING, heartbeatIntervalMs: SLOW_HEARTBEAT_MS }) },
      stdio: ['ignore', 'pipe', 'inherit']
    })
    let out = ''
    child.stdout?.on('data', (b: Buffer) => { out += b.toString() })
    const frozenId = await pollUntil(() => /READY (\S+)/.exec(out)?.[1], { timeoutMs: 20_000, what: 'the child node to start' })
    await pollUntil(() => nodes.every((n) => n.view.get(frozenId)?.liveness === 'alive' && n.view.liveCount() === 4), { timeoutMs: 10_000, intervalMs: 20, what: 'all four alive everywhere' })
    process.kill(child.pid as number, 'SIGSTOP')
    return { nodes, frozenId }
  }

  it('a frozen host is dead everywhere within seconds, long before two of its heartbeats', async () => {
    const { nodes, frozenId } = await frozenHost(LOCAL_TEST_TIMING.memberProbeIntervalMs)
    const frozenAt = Date.now()
    await pollUntil(() => nodes.every((n) => n.view.get(frozenId)?.liveness === 'dead'), { timeoutMs: 2 * SLOW_HEARTBEAT_MS, intervalMs: 20, what: 'the frozen host dead everywhere' })
    const tookMs = Date.now() - frozenAt
    console.log(`member probing: a frozen host was dead at all 3 peers ${tookMs} ms after SIGSTOP (its heartbeat ${SLOW_HEARTBEAT_MS} ms)`)
    expect(tookMs).toBeLessThan(SLOW_HEARTBEAT_MS)
    // A prober found it and told the others (a notice), no connection having dropped.
    expect(nodes.some((n) => n.stats().suspicions.published > 0)).toBe(true)
  }, 60_000)

  it('without member probing the same frozen host is still alive after those seconds', async () => {
    const { nodes, frozenId } = await frozenHost(0)
    await new Promise((resolve) => setTimeout(resolve, SLOW_HEARTBEAT_MS * 0.8))
    for (const n of nodes) expect(n.view.get(frozenId)?.liveness).toBe('alive')
    expect(nodes.every((n) => n.stats().suspicions.published === 0)).toBe(true)
  }, 60_000)
})
