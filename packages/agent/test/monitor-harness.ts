import { join } from 'node:path'
import { afterEach } from 'vitest'
import { silentLogger } from '../src/log/logger.js'
import { attachMonitoring, type Monitoring } from '../src/monitor/attach-monitoring.js'
import { type SimCluster } from '@meshvirt/testkit'
import { loadOrCreateIdentity } from '../src/store/identity-store.js'

/**
 * The monitoring of each sim-cluster agent: the one runAgent attached when it has it, otherwise
 * attached here the way runAgent does (attachMonitoring, following the agent's events).
 * `stop` stops only what it attached; the agents stop theirs.
 */
export async function monitorAgents (cluster: SimCluster): Promise<{ monitors: Monitoring[], stop: () => Promise<void> }> {
  const monitors: Monitoring[] = []
  const attached: Monitoring[] = []
  const stop = async (): Promise<void> => { await Promise.allSettled(attached.map(async (m) => { await m.stop() })) }
  try {
    for (const [i, a] of cluster.agents.entries()) {
      const own = (a as { monitoring?: Monitoring }).monitoring
      if (own !== undefined) { monitors.push(own); continue }
      const dataDir = join(cluster.dir, `h${i}`)
      const { identity } = await loadOrCreateIdentity(dataDir)
      const monitor = await attachMonitoring({
        config: { http: true, host: '127.0.0.1', port: 0, tokenFile: join(dataDir, 'monitor.token') },
        clusterName: a.mesh.topic.split('/')[2] as string,
        privateKey: identity.privateKey,
        mesh: a.mesh,
        ledger: a.ledger,
        vms: a.vms,
        broker: a.broker,
        hypervisor: a.hypervisor,
        events: a.events,
        log: silentLogger
      })
      monitors.push(monitor)
      attached.push(monitor)
    }
  } catch (err) {
    await stop()
    throw err
  }
  return { monitors, stop }
}

/**
 * A test's sim cluster and the monitoring attached to it, both torn down after each test of the
 * describe that calls this: `track` the cluster a test starts, `monitor` it when the test wants to.
 */
export function clusterPerTest (): { track: (cluster: SimCluster) => SimCluster, monitor: (cluster: SimCluster) => Promise<Monitoring[]> } {
  let current: SimCluster | undefined
  let stopMonitors = async (): Promise<void> => {}
  afterEach(async () => {
    await stopMonitors()
    stopMonitors = async () => {}
    await current?.stop()
    current = undefined
  })
  return {
    track: (cluster) => { current = cluster; return cluster },
    monitor: async (cluster) => {
      const m = await monitorAgents(cluster)
      stopMonitors = m.stop
      return m.monitors
    }
  }
}
