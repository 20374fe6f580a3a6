import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { meshvirt, meshvirtOn, startAgentCluster, type AgentProcess, pollUntil } from '@meshvirt/testkit'

/** Real `meshvirt agent` processes with the simulated hypervisor: the control plane whole, no guests. */
export interface SimAgents {
  dir: string
  agents: AgentProcess[]
  /** An agent's dashboard base URL and the token its monitor.token file holds. */
  monitorOf: (agent: AgentProcess) => Promise<{ url: string, token: string }>
  stop: () => Promise<void>
}

/**
 * `count` agents (`--hypervisor sim`, monitoring on a free loopback port), host-N named, joined
 * through host-1, each seeing every other alive before this resolves.
 */
export async function startSimAgents (count: number, argsOf: (i: number) => string[] = () => []): Promise<SimAgents> {
  const dir = await mkdtemp(join(tmpdir(), 'mv-simag-'))
  const agents: AgentProcess[] = []
  const stop = async (): Promise<void> => {
    await Promise.allSettled(agents.map(async (a) => { await a.stop() }))
    await rm(dir, { recursive: true, force: true })
  }
  try {
    const key = join(dir, 'cluster.key')
    const init = await meshvirt(['cluster', 'init', '--out', key])
    if (init.exitCode !== 0) throw new Error(`meshvirt cluster init: ${init.stderr}`)
    const started = await startAgentCluster(dir, key, count, (i) => ['--hypervisor', 'sim', '--monitor-listen', '127.0.0.1:0', ...argsOf(i)])
    agents.push(...started.agents)
    await pollUntil(async () => {
      for (const a of agents) {
        const hosts = JSON.parse(await meshvirtOn(a, ['host', 'ls', '--json'])) as Array<{ liveness: string }>
        if (hosts.filter((h) => h.liveness === 'alive').length !== count) return false
      }
      return true
    }, { timeoutMs: 30_000, intervalMs: 200, what: `every agent to see ${count} hosts alive` })
  } catch (err) {
    await stop()
    throw err
  }
  const monitorOf = async (agent: AgentProcess): Promise<{ url: string, token: string }> => {
    const info = JSON.parse(await readFile(join(agent.dataDir, 'agent.json'), 'utf8')) as { dashboardUrl?: string }
    if (info.dashboardUrl === undefined) throw new Error(`${agent.dataDir}: the agent serves no dashboard`)
    const token = (await readFile(join(agent.dataDir, 'monitor.token'), 'utf8')).trim()
    return { url: info.dashboardUrl.replace(/\/$/, ''), token }
  }
  return { dir, agents, monitorOf, stop }
}
