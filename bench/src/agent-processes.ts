/** What benchmarks ask of running `meshvirt agent` processes: CPU time, memory, a port, the mesh formed. */
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import type { ControlClient } from '@meshvirt/agent'
import type { AgentProcess } from '@meshvirt/testkit'

/** User + system CPU time of the agent processes so far, from /proc (clock ticks of 10 ms). */
export async function cpuMs (agents: AgentProcess[]): Promise<number> {
  let ticks = 0
  for (const a of agents) {
    const fields = (await readFile(`/proc/${a.pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? []
    ticks += Number(fields[11]) + Number(fields[12])
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
