/** What benchmarks ask of running `meshvirt agent` processes: CPU time, memory, a port, the mesh formed. */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ControlClient } from '@meshvirt/agent'
import { meshvirt, startAgentCluster, type AgentProcess } from '@meshvirt/testkit'

/**
 * Runs `fn` over `count` `meshvirt agent` processes under a new cluster key in a fresh temporary
 * dir, once every one sees all of them alive; stops them and removes the dir afterwards, whatever
 * happens. `argsOf(i)` (1-based) adds to each command line; `env` to the test kit's environment.
 */
export async function withAgentCluster<T> (
  opts: { prefix: string, count: number, argsOf: (i: number) => string[], env?: Record<string, string> },
  fn: (agents: AgentProcess[], clients: ControlClient[]) => Promise<T>
): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), opts.prefix))
  let agents: AgentProcess[] = []
  try {
    const key = join(dir, 'cluster.key')
    const init = await meshvirt(['cluster', 'init', '--out', key])
    if (init.exitCode !== 0) throw new Error(init.stderr)
    agents = (await startAgentCluster(dir, key, opts.count, opts.argsOf, opts.env)).agents
    const clients = agents.map((a) => new ControlClient(join(a.dataDir, 'control.sock')))
    await waitAllAlive(clients, opts.count)
    return await fn(agents, clients)
  } finally {
    await Promise.all(agents.map(async (a) => { await a.stop() }))
    await rm(dir, { recursive: true, force: true })
  }
}

/** User + system CPU time of the agent processes so far, from /proc (clock ticks of 10 ms). */
export async function cpuMs (agents: AgentProcess[]): Promise<number> {
  return await processCpuMs(agents.map((a) => a.pid))
}

/** The same for any processes by pid; one that has exited counts nothing. */
export async function processCpuMs (pids: number[]): Promise<number> {
  let ticks = 0
  for (const pid of pids) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined)
    const fields = stat?.split(') ')[1]?.split(' ') ?? []
    if (stat !== undefined) ticks += Number(fields[11]) + Number(fields[12])
  }
  return ticks * 10
}

/** A loopback port free right now (the agent binds it a moment later). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => { resolve(port) })
    })
  })
}

export async function waitAllAlive (clients: ControlClient[], n: number): Promise<void> {
  const deadline = Date.now() + 180_000
  for (;;) {
    const seen = await Promise.all(clients.map(async (c) => {
      const hosts = (await c.call({ listHosts: {} })).hostList?.hosts ?? []
      return hosts.filter((h) => h.liveness === 'alive').length
    }))
    if (seen.every((s) => s === n)) return
    if (Date.now() > deadline) throw new Error(`not every agent saw ${n} hosts alive within 180 s: ${seen.join(',')}`)
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
}

/** Resident memory of a process now, in bytes (it moves with every GC: sample it). */
export async function rssBytes (pid: number): Promise<number> {
  const kb = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]
  return Number(kb ?? 0) * 1024
}
