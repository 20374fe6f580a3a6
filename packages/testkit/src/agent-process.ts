import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

/** The built CLI: end-to-end suites run the real `meshvirt` binary (npm test builds first). */
export const MESHVIRT_BIN = fileURLToPath(new URL('../../cli/dist/bin.js', import.meta.url))

export async function meshvirt (args: string[], env: Record<string, string> = {}): Promise<{ stdout: string, stderr: string, exitCode: number }> {
  return await new Promise((resolve) => {
    execFile('node', [MESHVIRT_BIN, ...args], { env: { PATH: process.env.PATH, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ stdout, stderr, exitCode: code })
    })
  })
}

/** `meshvirt ARGV --data-dir <agent's>`; its stdout, or an error with its stderr. */
export async function meshvirtOn (agent: { dataDir: string }, argv: string[]): Promise<string> {
  const r = await meshvirt([...argv, '--data-dir', agent.dataDir])
  if (r.exitCode !== 0) throw new Error(`meshvirt ${argv.join(' ')} failed (${r.exitCode}): ${r.stderr}`)
  return r.stdout
}

export interface AgentProcess {
  pid: number
  hostId: string
  /** Dialable address with /p2p/<id>, for others' --bootstrap. */
  addr: string
  dataDir: string
  child: ChildProcess
  output: () => string
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop: (graceMs?: number) => Promise<void>
  kill9: () => Promise<void>
}

/** Starts `meshvirt agent` as its own process and waits for its ready line. */
export async function startAgentProcess (args: string[], opts: { dataDir: string, env?: Record<string, string>, readyTimeoutMs?: number }): Promise<AgentProcess> {
  // Extra node flags for profiling a run (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"); NODE_OPTIONS refuses those.
  const nodeArgs = (process.env.MESHVIRT_AGENT_NODE_ARGS ?? '').split(' ').filter((a) => a !== '')
  const child = spawn('node', [...nodeArgs, MESHVIRT_BIN, 'agent', '--data-dir', opts.dataDir, ...args], {
    env: { ...process.env, MESHVIRT_TIMING: 'local', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  return await agentProcess(child, { dataDir: opts.dataDir, ...(opts.readyTimeoutMs !== undefined ? { readyTimeoutMs: opts.readyTimeoutMs } : {}) })
}

/**
 * A spawned `meshvirt agent` (stdout and stderr piped), once it printed its ready line with an
 * address on `listenHost` (127.0.0.1; a namespace's own address for agents started inside one).
 */
export async function agentProcess (child: ChildProcess, opts: { dataDir: string, readyTimeoutMs?: number, listenHost?: string, where?: string }): Promise<AgentProcess> {
  const readyTimeoutMs = opts.readyTimeoutMs ?? 20_000
  const where = opts.where !== undefined ? ` ${opts.where}` : ''
  let out = ''
  let err = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  const addrPattern = new RegExp(`listening on (/ip4/${(opts.listenHost ?? '127.0.0.1').replaceAll('.', '\\.')}/tcp/\\d+/p2p/\\S+)`)
  const ready = await new Promise<{ hostId: string, addr: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Not ready in time: it is stopped here, since nobody else ever gets it to stop.
      child.kill('SIGKILL')
      reject(new Error(`agent${where} did not become ready within ${readyTimeoutMs} ms:\n${out}\n${err}`))
    }, readyTimeoutMs)
    const check = (): void => {
      const host = /agent ready: host (\S+)/.exec(out)
      const addr = addrPattern.exec(out)
      if (host?.[1] !== undefined && addr?.[1] !== undefined) { clearTimeout(timer); resolve({ hostId: host[1], addr: addr[1] }) }
    }
    child.stdout?.on('data', check)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`agent${where} exited with ${code} before ready:\n${out}\n${err}`)) })
  })
  const pid = child.pid as number
  const stop = async (graceMs = 5000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    process.kill(pid, 'SIGTERM')
    const timer = setTimeout(() => { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }, graceMs)
    await exited
    clearTimeout(timer)
  }
  const kill9 = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    process.kill(pid, 'SIGKILL')
    await exited
  }
  return { pid, ...ready, dataDir: opts.dataDir, child, output: () => out + err, stop, kill9 }
}

/**
 * Agent processes host-1…host-N on loopback ports chosen by the OS, each after the first
 * bootstrapping through host-1, with `argsOf(i)` (1-based) added to their command lines. `argvOf[i]`
 * restarts host-(i+1) on the same port, as an operator's agent would come back (peers redial the
 * address they know).
 */
export async function startAgentCluster (dir: string, clusterKey: string, count: number, argsOf: (i: number) => string[], env?: Record<string, string>): Promise<{ agents: AgentProcess[], argvOf: string[][] }> {
  const agents: AgentProcess[] = []
  const argvOf: string[][] = []
  const anyPort = '/ip4/127.0.0.1/tcp/0'
  try {
    for (let i = 1; i <= count; i++) {
      const argv = ['--name', `host-${i}`, '-l', anyPort, '-k', clusterKey, ...argsOf(i), ...(agents[0] !== undefined ? ['--bootstrap', agents[0].addr] : [])]
      const agent = await startAgentProcess(argv, { dataDir: join(dir, `host-${i}`), ...(env !== undefined ? { env } : {}) })
      agents.push(agent)
      argvOf.push(argv.map((a) => a === anyPort ? `/ip4/127.0.0.1/tcp/${/\/tcp\/(\d+)\//.exec(agent.addr)?.[1] ?? '0'}` : a))
    }
  } catch (err) {
    // One that does not come up stops the ones that did: the caller never got them to stop.
    await Promise.allSettled(agents.map(async (a) => { await a.stop() }))
    throw err
  }
  return { agents, argvOf }
}
