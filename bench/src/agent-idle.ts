/**
 * What an operator's host pays for being in the mesh: `meshvirt agent` processes (simulated
 * hypervisor and network, the agent's own default timing, no VM), every one its own process,
 * idle once all see each other. Memory is sampled every 2 s over the window and averaged (RSS
 * moves with every GC); CPU time comes from /proc over the same window.
 */
import { readFileSync } from 'node:fs'
import { cpuMs, rssBytes, withAgentCluster } from './agent-processes.js'

const SAMPLE_MS = 2_000
/** Joins, the first adverts and their re-publishing are over by then. */
const SETTLE_MS = 20_000
const MB = 2 ** 20

export interface AgentIdleFigures {
  agents: number
  windowS: number
  /** Over every agent but the first (the door everyone bootstrapped through). */
  rssMbMean: number
  rssMbMax: number
  cpuPctMean: number
  cpuPctMax: number
}

const UNIT_FILE = new URL('../../scripts/meshvirt-agent.service', import.meta.url)

/**
 * The environment the project's systemd unit gives the agent (its `Environment=` lines), without
 * the config file's path: the bench passes its own flags. The default is to measure an agent as the
 * unit runs it; `{}` measures it as a bare `meshvirt agent` in a shell.
 */
export function unitEnvironment (unit = readFileSync(UNIT_FILE, 'utf8')): Record<string, string> {
  const env: Record<string, string> = {}
  for (const m of unit.matchAll(/^Environment=([A-Z_][A-Z0-9_]*)=(\S*)\s*$/gm)) {
    if (m[1] !== 'MESHVIRT_CONFIG') env[m[1] as string] = m[2] as string
  }
  return env
}

export async function agentIdle (agents: number, windowMs: number, log: (line: string) => void, env: Record<string, string> = unitEnvironment()): Promise<AgentIdleFigures> {
  // MESHVIRT_TIMING empty: the agent's defaults (the LAN preset), not the test kit's fast timing.
  const args = ['--hypervisor', 'sim', '--network', 'sim', '--monitor-listen', 'off', '--log-level', 'warn']
  return await withAgentCluster({ prefix: 'mv-bench-idle-', count: agents, argsOf: () => args, env: { ...env, MESHVIRT_TIMING: '' } }, async (all) => {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS))
    const measured = all.slice(1)
    const cpu0 = await Promise.all(measured.map(async (a) => await cpuMs([a])))
    const t0 = Date.now()
    const rss: number[][] = measured.map(() => [])
    while (Date.now() - t0 < windowMs) {
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS))
      for (const [i, a] of measured.entries()) rss[i]?.push(await rssBytes(a.pid))
    }
    const elapsedMs = Date.now() - t0
    const cpuPct = await Promise.all(measured.map(async (a, i) => ((await cpuMs([a])) - (cpu0[i] ?? 0)) / elapsedMs * 100))
    const meanRss = rss.map((xs) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length) / MB)
    const figures: AgentIdleFigures = {
      agents,
      windowS: Math.round(elapsedMs / 1000),
      rssMbMean: meanRss.reduce((s, x) => s + x, 0) / meanRss.length,
      rssMbMax: Math.max(...rss.flat()) / MB,
      cpuPctMean: cpuPct.reduce((s, x) => s + x, 0) / cpuPct.length,
      cpuPctMax: Math.max(...cpuPct)
    }
    const how = Object.keys(env).length === 0 ? 'no unit environment' : Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')
    log(`${agents} idle agent processes (${how}): RSS ${figures.rssMbMean.toFixed(1)} MB mean (max ${figures.rssMbMax.toFixed(1)}), CPU ${figures.cpuPctMean.toFixed(2)} % of a core mean (max ${figures.cpuPctMax.toFixed(2)}) over ${figures.windowS} s`)
    return figures
  })
}
