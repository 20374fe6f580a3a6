/**
 * The failover benchmark's cluster: real `meshvirt agent` processes (real QEMU guests), each with its
 * own data dir and a fixed loopback port (so a killed host comes back at the same address), the CLI
 * for commands, the control socket for fast polling (`vm show --json` reads the same inspectVm), and
 * "host death": SIGKILL of the agent, its QEMUs and its fence watchdog in one synchronous step.
 *
 * Agents run with the shipped timing: MESHVIRT_TIMING is removed from their environment (the test
 * helper startAgentProcess sets it to 'local'; a benchmark must measure the defaults).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ControlClient, vmView, type VmView } from '@meshvirt/agent'

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const MESHVIRT_BIN = join(REPO, 'packages', 'cli', 'dist', 'bin.js')

export interface LogLine { time: number, level: string, msg: string, fields: Record<string, unknown> }

export interface Agent {
  name: string
  dataDir: string
  port: number
  argv: string[]
  pid: number
  hostId: string
  addr: string
  child: ChildProcess
  /** Every JSON log line the agent wrote (stderr), parsed, oldest first. */
  logs: () => LogLine[]
  exited: Promise<void>
}

export { freePort } from './agent-processes.js'

export function agentEnv (): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env.MESHVIRT_TIMING
  return env
}

/**
 * Starts `meshvirt agent` and waits for its ready line (bounded). With `netns`, the agent runs inside
 * that network namespace and listens on `netns.addr` (`ip netns exec` execs node in place: the pid is the agent's).
 */
export async function startAgent (name: string, dataDir: string, port: number, argv: string[], readyTimeoutMs = 60_000, netns?: { ns: string, addr: string }): Promise<Agent> {
  const listenHost = netns?.addr ?? '127.0.0.1'
  // As the test kit's agents: MESHVIRT_AGENT_NODE_ARGS (e.g. --cpu-prof) goes to each agent's node.
  const nodeArgs = (process.env.MESHVIRT_AGENT_NODE_ARGS ?? '').split(' ').filter((a) => a !== '')
  const args = [...nodeArgs, MESHVIRT_BIN, 'agent', '--data-dir', dataDir, '--name', name, '-l', `/ip4/${listenHost}/tcp/${port}`, ...argv]
  const child = netns === undefined
    ? spawn(process.execPath, args, { env: agentEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn('ip', ['netns', 'exec', netns.ns, process.execPath, ...args], { env: agentEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  const lines: LogLine[] = []
  let partial = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => {
    const text = partial + d.toString()
    const parts = text.split('\n')
    partial = parts.pop() ?? ''
    for (const l of parts) {
      err += l + '\n'
      if (err.length > 200_000) err = err.slice(-100_000)
      try {
        const j = JSON.parse(l) as Record<string, unknown>
        const { time, level, msg, ...fields } = j
        lines.push({ time: Date.parse(String(time)), level: String(level), msg: String(msg), fields })
      } catch { /* not a log line */ }
    }
  })
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  const ready = await new Promise<{ hostId: string, addr: string }>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`${name}: agent not ready within ${readyTimeoutMs} ms:\n${out}\n${err.slice(-2000)}`)) }, readyTimeoutMs)
    const check = (): void => {
      const host = /agent ready: host (\S+)/.exec(out)
      const addr = new RegExp(`listening on (/ip4/${listenHost.replaceAll('.', '\\.')}/tcp/\\d+/p2p/\\S+)`).exec(out)
      if (host?.[1] !== undefined && addr?.[1] !== undefined) { clearTimeout(timer); resolve({ hostId: host[1], addr: addr[1] }) }
    }
    child.stdout?.on('data', check)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name}: agent exited with ${code} before ready:\n${out}\n${err.slice(-2000)}`)) })
  })
  return { name, dataDir, port, argv, pid: child.pid as number, ...ready, child, logs: () => lines, exited }
}

export function isAlive (agent: Agent): boolean {
  return agent.child.exitCode === null && agent.child.signalCode === null
}

/** SIGTERM, SIGKILL after `graceMs`; resolves when the agent has exited. */
export async function stopAgent (agent: Agent, graceMs = 8000): Promise<void> {
  if (!isAlive(agent)) return
  try { process.kill(agent.pid, 'SIGTERM') } catch { return }
  const timer = setTimeout(() => { try { process.kill(agent.pid, 'SIGKILL') } catch { /* gone */ } }, graceMs)
  await agent.exited
  clearTimeout(timer)
}

/** `meshvirt ARGV [--data-dir <agent's>]`: stdout, or throws with stderr. */
export async function cli (agent: Pick<Agent, 'dataDir'> | undefined, argv: string[], timeoutMs = 120_000): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile(process.execPath, [MESHVIRT_BIN, ...argv, ...(agent !== undefined ? ['--data-dir', agent.dataDir] : [])], { env: agentEnv(), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`meshvirt ${argv.join(' ')} failed: ${stderr.trim() || err.message}`))
      else resolve(stdout)
    })
  })
}

/** What `vm show NAME --json` prints, through the agent's control socket (no process spawned per poll). */
export async function inspect (agent: Pick<Agent, 'dataDir'>, vm: string, timeoutMs = 1500): Promise<VmView> {
  const res = await new ControlClient(join(agent.dataDir, 'control.sock')).call({ inspectVm: { vm: { name: vm } } }, { timeoutMs })
  return vmView(res.vm ?? {})
}

/** QEMU pids under a data dir (pid files checked against /proc, as killQemusUnder does). */
export function qemuPidsUnder (dataDir: string): Array<{ vmId: string, pid: number }> {
  const out: Array<{ vmId: string, pid: number }> = []
  const vms = join(dataDir, 'vms')
  let ids: string[] = []
  try { ids = readdirSync(vms) } catch { return out }
  for (const id of ids) {
    const pidFile = join(vms, id, 'qemu.pid')
    let pid = Number.NaN
    try { pid = Number.parseInt(readFileSync(pidFile, 'utf8'), 10) } catch { continue }
    if (!Number.isInteger(pid)) continue
    let cmdline = ''
    try { cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8') } catch { continue }
    if (cmdline.split('\0').includes(pidFile)) out.push({ vmId: id, pid })
  }
  return out
}

/** The fence watchdog process of a data dir, if it runs. */
export function watchdogPid (dataDir: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(join(dataDir, 'fence', 'watchdog.pid'), 'utf8'), 10)
    if (!Number.isInteger(pid) || pid <= 0) return undefined
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    return cmdline.includes('watchdog-process') ? pid : undefined
  } catch { return undefined }
}

/**
 * Host death: the agent, every QEMU under its data dir and its fence watchdog get SIGKILL in one
 * synchronous step (pids gathered first). Returns the instant (Unix ms) just before the first kill.
 */
export function killHost (agent: Agent): { at: number, qemus: number[], watchdog: number | undefined } {
  const qemus = qemuPidsUnder(agent.dataDir).map((q) => q.pid)
  const watchdog = watchdogPid(agent.dataDir)
  const at = Date.now()
  for (const pid of [agent.pid, ...qemus, ...(watchdog !== undefined ? [watchdog] : [])]) {
    try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
  }
  return { at, qemus, watchdog }
}

/** CPU seconds (user + system) a process has used so far; undefined once it is gone. */
export function cpuSeconds (pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // Fields 14 and 15 of proc(5) (utime, stime), in clock ticks of 1/100 s on Linux.
    return (Number(f[11]) + Number(f[12])) / 100
  } catch { return undefined }
}

/** SIGKILL of everything left under a data dir (clean-up). */
export function killLeftovers (dataDir: string): number[] {
  const pids = [...qemuPidsUnder(dataDir).map((q) => q.pid)]
  const w = watchdogPid(dataDir)
  if (w !== undefined) pids.push(w)
  for (const pid of pids) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
  return pids
}

export async function readText (path: string): Promise<string> {
  return await readFile(path, 'utf8').catch(() => '')
}

/** The last counter a guest printed in its serial log, or -1. */
export async function lastCounter (serialLog: string): Promise<number> {
  const all = [...(await readText(serialLog)).matchAll(/MESHVIRT-COUNTER (\d+)/g)]
  return all.length === 0 ? -1 : Number(all.at(-1)?.[1])
}

/** Polls `probe` every `intervalMs` until it returns a value other than undefined, or the deadline. */
export async function until<T> (probe: () => Promise<T | undefined>, opts: { timeoutMs: number, intervalMs?: number, what: string }): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await probe()
      if (v !== undefined) return v
    } catch (err) { last = err }
    if (Date.now() > deadline) throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${last !== undefined ? ` (last error: ${String((last as Error).message ?? last)})` : ''}`)
    await new Promise((resolve) => setTimeout(resolve, opts.intervalMs ?? 200))
  }
}
