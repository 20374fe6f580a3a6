/**
 * Mesh hosts as separate processes (bench/dist/gossip-agent.js), for the figures one process
 * cannot give: the memory of one agent alone, and convergence and failure detection when a
 * host is really killed (SIGKILL) and each host has its own event loop.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { processCpuMs } from './agent-processes.js'
import type { AgentArgs, AgentEvent } from './gossip-agent.js'
import { ROUND_TIMEOUT_MS, sleep, waitFor } from './gossip-cluster.js'

const AGENT_JS = join(dirname(fileURLToPath(import.meta.url)), 'gossip-agent-main.js')
/** A child that does not print its first line by then is broken. */
const READY_TIMEOUT_MS = 20_000
const STOP_TIMEOUT_MS = 3_000

export class AgentProcess {
  readonly events: AgentEvent[] = []
  hostId = ''
  addr = ''
  private readonly child: ChildProcessWithoutNullStreams
  private exited: Promise<void>

  constructor (args: AgentArgs) {
    this.child = spawn(process.execPath, [AGENT_JS, JSON.stringify(args)], { stdio: ['pipe', 'pipe', 'pipe'] })
    this.exited = new Promise((resolve) => { this.child.once('exit', () => { resolve() }) })
    this.child.stderr.on('data', (d: Buffer) => { process.stderr.write(`[agent] ${d.toString()}`) })
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      try {
        const e = JSON.parse(line) as AgentEvent
        if (e.type === 'ready') {
          this.hostId = e.hostId
          this.addr = e.addr
        }
        this.events.push(e)
      } catch {
        // libp2p debug output or a partial line: not ours.
      }
    })
  }

  get pid (): number | undefined {
    return this.child.pid
  }

  async ready (): Promise<void> {
    if (!await waitFor(() => this.hostId !== '', READY_TIMEOUT_MS)) throw new Error('gossip agent did not start')
  }

  send (cmd: Record<string, unknown>): void {
    this.child.stdin.write(JSON.stringify(cmd) + '\n')
  }

  async stats (): Promise<Extract<AgentEvent, { type: 'stats' }>> {
    const before = this.events.length
    this.send({ cmd: 'stats' })
    await waitFor(() => this.events.slice(before).some((e) => e.type === 'stats'), READY_TIMEOUT_MS, 10)
    return this.events.slice(before).findLast((e) => e.type === 'stats') as Extract<AgentEvent, { type: 'stats' }>
  }

  kill (): void {
    this.child.kill('SIGKILL')
  }

  /** Asks politely, then SIGKILL after a bound; resolves once the process has exited. */
  async stop (): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    this.send({ cmd: 'stop' })
    const timer = setTimeout(() => { this.child.kill('SIGKILL') }, STOP_TIMEOUT_MS)
    await this.exited
    clearTimeout(timer)
  }
}

export class ClusterStartError extends Error {
  constructor (readonly wanted: number, readonly ready: number, readonly cores: number, cause: unknown) {
    super(`${ready} of ${wanted} mesh host processes came up; the next did not start within ${READY_TIMEOUT_MS / 1000} s, with the ${ready} running keeping ${cores.toFixed(2)} cores busy`, { cause })
  }
}

/** Cores the processes keep busy over `windowMs`. */
export async function coresBusy (pids: number[], windowMs = 5_000): Promise<number> {
  const t0 = Date.now()
  const before = await processCpuMs(pids)
  await sleep(windowMs)
  return (await processCpuMs(pids) - before) / (Date.now() - t0)
}

export class ProcessCluster {
  readonly agents: AgentProcess[] = []

  constructor (private readonly clusterKeyHex: string, private readonly timing: AgentArgs['timing']) {}

  /**
   * Starts `n` agent processes: the first alone (the door), then four at a time (startup is
   * CPU-bound here). When one does not come up in time the machine is out of CPU: the error says
   * how many are up and how many cores they keep busy.
   */
  async start (n: number, bootstrap: string[] = []): Promise<void> {
    const door = [...bootstrap]
    while (this.agents.length < n) {
      const batch = door.length === 0 ? 1 : Math.min(4, n - this.agents.length)
      const started = Array.from({ length: batch }, () => new AgentProcess({ clusterKeyHex: this.clusterKeyHex, bootstrap: door, timing: this.timing }))
      this.agents.push(...started)
      try {
        await Promise.all(started.map(async (a) => { await a.ready() }))
      } catch (err) {
        const up = this.agents.filter((a) => a.hostId !== '')
        throw new ClusterStartError(n, up.length, await coresBusy(up.flatMap((a) => a.pid ?? [])), err)
      }
      if (door.length === 0 && started[0] !== undefined) door.push(started[0].addr)
    }
  }

  async waitAllAlive (expected: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      const stats = await Promise.all(this.agents.map(async (a) => await a.stats()))
      if (stats.every((s) => s.alive === expected)) return true
      await sleep(500)
    }
    return false
  }

  /** Like InProcessCluster.measureConvergence, with the times the children report. */
  async measureConvergence (rounds: number, firstMarker: number): Promise<{ convergence: number[], missed: number }> {
    const convergence: number[] = []
    let missed = 0
    for (let r = 0; r < rounds; r++) {
      const marker = firstMarker + r
      const source = this.agents[Math.floor(Math.random() * this.agents.length)] as AgentProcess
      const others = this.agents.filter((a) => a !== source)
      const seenAt = (a: AgentProcess): number | undefined =>
        (a.events.findLast((e) => e.type === 'seen' && e.from === source.hostId && e.marker === marker) as { at: number } | undefined)?.at
      const t0 = Date.now()
      source.send({ cmd: 'update', marker })
      const ok = await waitFor(() => others.every((a) => seenAt(a) !== undefined), ROUND_TIMEOUT_MS, 5)
      if (ok) convergence.push(Math.max(...others.map((a) => (seenAt(a) as number) - t0)))
      else {
        missed++
        convergence.push(ROUND_TIMEOUT_MS)
      }
      await sleep(50)
    }
    return { convergence, missed }
  }

  /** SIGKILLs one agent; time until every other one reports it dead. */
  async measureKill (timeoutMs: number): Promise<{ deadAllMs: number, suspectFirstMs: number } | undefined> {
    const victim = this.agents[1 + Math.floor(Math.random() * (this.agents.length - 1))] as AgentProcess
    const others = this.agents.filter((a) => a !== victim)
    const t0 = Date.now()
    victim.kill()
    const at = (a: AgentProcess, type: 'suspect' | 'dead'): number | undefined =>
      (a.events.findLast((e) => e.type === type && e.host === victim.hostId) as { at: number } | undefined)?.at
    const ok = await waitFor(() => others.every((a) => at(a, 'dead') !== undefined), timeoutMs, 20)
    await victim.stop()
    this.agents.splice(this.agents.indexOf(victim), 1)
    if (!ok) return undefined
    return {
      deadAllMs: Math.max(...others.map((a) => (at(a, 'dead') as number) - t0)),
      suspectFirstMs: Math.min(...others.map((a) => (at(a, 'suspect') ?? Infinity) - t0))
    }
  }

  /**
   * Per host and second over `windowMs`: bytes read (sockets, from /proc) and the distinct adverts
   * and suspicion notices accepted. With `restarts`, that many hosts (never the door) are SIGKILLed
   * and replaced by new ones, spread over the window; the figures are those of the hosts that lived
   * through it.
   */
  async measureTraffic (windowMs: number, restarts = 0): Promise<{ hosts: number, bytesPerHostS: number, advertsPerHostS: number, noticesPerHostS: number }> {
    const victims = restarts > 0 ? this.agents.slice(1).slice(-restarts) : []
    const steady = this.agents.filter((a) => !victims.includes(a))
    const before = await Promise.all(steady.map(async (a) => await a.stats()))
    const t0 = Date.now()
    for (const [i, victim] of victims.entries()) {
      await sleep(Math.max(0, t0 + ((i + 0.5) * windowMs) / victims.length - Date.now()))
      victim.kill()
      await victim.stop()
      const fresh = new AgentProcess({ clusterKeyHex: this.clusterKeyHex, bootstrap: [this.agents[0]?.addr ?? ''], timing: this.timing })
      this.agents.splice(this.agents.indexOf(victim), 1, fresh)
      await fresh.ready()
    }
    await sleep(Math.max(0, t0 + windowMs - Date.now()))
    const after = await Promise.all(steady.map(async (a) => await a.stats()))
    const seconds = (Date.now() - t0) / 1000
    const perHostS = (f: (s: Extract<AgentEvent, { type: 'stats' }>) => number): number =>
      after.reduce((sum, s, i) => sum + f(s) - f(before[i] as typeof s), 0) / steady.length / seconds
    return { hosts: steady.length, bytesPerHostS: perHostS((s) => s.readBytes), advertsPerHostS: perHostS((s) => s.advertsAccepted), noticesPerHostS: perHostS((s) => s.noticesAccepted) }
  }

  async stop (): Promise<void> {
    await Promise.all(this.agents.map(async (a) => { await a.stop() }))
  }
}
