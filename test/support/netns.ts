/**
 * Test hosts in their own network namespaces (scripts/netns): each host has one address on a
 * private switch, so a test can cut a host's link or partition the cluster and watch the mesh
 * react to real silence — not to a process that was stopped.
 *
 * Needs root; `netnsAvailable()` says whether this machine can, so a suite skips (and says so)
 * or falls back to loopback. Each test file takes its own prefix: its namespaces, switch and
 * processes are apart from every other file's.
 *
 *   const cluster = await NetnsCluster.create({ size: 3, prefix: 'mvtmesh' })
 *   const a = await startAgentInNamespace(cluster, 1, ['-k', key], { dataDir })
 *   await cluster.partition([1], [2, 3])
 *   await cluster.teardown()   // kills what it started (by pid), then removes the namespaces
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { MESHVIRT_BIN, agentProcess, type AgentProcess } from '@meshvirt/testkit'

export const NETNS_SCRIPT = fileURLToPath(new URL('../../scripts/netns', import.meta.url))

/** A child that ignores SIGTERM this long gets SIGKILL. */
const STOP_GRACE_MS = 5000

export interface NetnsHost {
  /** 1-based, as the script counts. */
  index: number
  /** The network namespace, `<prefix>-h<index>`. */
  ns: string
  /** Its IPv4 address on the cluster's switch. */
  addr: string
}

/** A host by index (1-based) or as returned by the cluster. */
export type HostRef = number | NetnsHost

interface RunResult { stdout: string, stderr: string, exitCode: number }

async function run (command: string, args: string[], timeoutMs = 30_000): Promise<RunResult> {
  return await new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const exitCode = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ stdout, stderr, exitCode })
    })
  })
}

let available: Promise<boolean> | undefined

/**
 * True when this process may create network namespaces: root, and `ip netns add` really works
 * (a container without CAP_SYS_ADMIN can list namespaces but not make one).
 */
export async function netnsAvailable (): Promise<boolean> {
  available ??= (async () => {
    if (process.getuid?.() !== 0) return false
    const probe = `mvprobe${process.pid}`
    const added = await run('ip', ['netns', 'add', probe], 5000)
    if (added.exitCode !== 0) return false
    await run('ip', ['netns', 'del', probe], 5000)
    return true
  })()
  return await available
}

/** Why a netns suite is skipped here, for the test log. */
export function netnsUnavailableReason (): string {
  return process.getuid?.() !== 0
    ? 'not root: network namespaces need root (tests fall back to loopback or skip)'
    : '`ip netns add` failed here (no iproute2, or no CAP_SYS_ADMIN in this container)'
}

export interface NetnsClusterInit {
  size: number
  /** [a-z0-9]{1,12}, one per test file. */
  prefix: string
  /** First three octets of the /24 (default 10.200.0); clusters are isolated, so it may repeat. */
  subnet?: string
}

export class NetnsCluster {
  private readonly children = new Set<ChildProcess>()

  private constructor (readonly prefix: string, readonly hosts: NetnsHost[]) {}

  /** Brings up `size` hosts (removing whatever a crashed run left under this prefix first). */
  static async create (init: NetnsClusterInit): Promise<NetnsCluster> {
    const args = ['--prefix', init.prefix, 'up', String(init.size)]
    if (init.subnet !== undefined) args.push('--subnet', init.subnet)
    await script(args)
    const hosts: NetnsHost[] = []
    for (let i = 1; i <= init.size; i++) {
      const addr = (await script(['--prefix', init.prefix, 'addr', String(i)])).trim()
      hosts.push({ index: i, ns: `${init.prefix}-h${i}`, addr })
    }
    return new NetnsCluster(init.prefix, hosts)
  }

  host (ref: HostRef): NetnsHost {
    const i = typeof ref === 'number' ? ref : ref.index
    const h = this.hosts[i - 1]
    if (h === undefined) throw new Error(`no host ${i} in netns cluster ${this.prefix} (1…${this.hosts.length})`)
    return h
  }

  /** Starts `command` inside the host's namespace; teardown() stops it if the test did not. */
  spawn (ref: HostRef, command: string, args: string[], env: Record<string, string | undefined> = process.env): ChildProcess {
    // `ip netns exec` execs the command in place (no fork): the child's pid is the command's.
    const child = spawn('ip', ['netns', 'exec', this.host(ref).ns, command, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    this.children.add(child)
    child.once('exit', () => { this.children.delete(child) })
    return child
  }

  /** Runs a short command inside the host's namespace and returns its output. */
  async exec (ref: HostRef, command: string, args: string[]): Promise<RunResult> {
    return await run('ip', ['netns', 'exec', this.host(ref).ns, command, ...args])
  }

  /** Pulls the host's cable: its switch port goes down, the others hear nothing more from it. */
  async cut (ref: HostRef): Promise<void> { await this.do('cut', String(this.host(ref).index)) }
  async heal (ref: HostRef): Promise<void> { await this.do('heal', String(this.host(ref).index)) }

  /** Hosts talk only within their group; hosts in no group form one more group. */
  async partition (...groups: HostRef[][]): Promise<void> {
    await this.do('partition', ...groups.map((g) => g.map((h) => this.host(h).index).join(',')))
  }

  /** Undoes every partition and every cut. */
  async healAll (): Promise<void> { await this.do('heal-all') }

  async status (): Promise<string> { return await this.do('status') }

  /** Stops every process this cluster started (SIGTERM, SIGKILL after a grace), then removes the namespaces. */
  async teardown (graceMs = STOP_GRACE_MS): Promise<void> {
    await Promise.all([...this.children].map(async (c) => { await stopChild(c, graceMs) }))
    await this.do('down')
  }

  private async do (...args: string[]): Promise<string> {
    return await script(['--prefix', this.prefix, ...args])
  }
}

async function script (args: string[]): Promise<string> {
  const r = await run('bash', [NETNS_SCRIPT, ...args])
  if (r.exitCode !== 0) throw new Error(`scripts/netns ${args.join(' ')} failed (${r.exitCode}): ${r.stderr.trim()}`)
  return r.stdout
}

/** SIGTERM by pid, SIGKILL after `graceMs`; resolves when the child has exited. */
async function stopChild (child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
  const pid = child.pid
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  try { process.kill(pid, 'SIGTERM') } catch { return }
  const timer = setTimeout(() => { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }, graceMs)
  await exited
  clearTimeout(timer)
}

/**
 * `meshvirt agent` inside a host's namespace, listening on the host's address (port 7946: each
 * namespace has its own ports), with test timing; resolves once it printed its ready line. The
 * control socket is in `dataDir`, reachable from the root namespace (`meshvirtOn(agent, …)`).
 */
export async function startAgentInNamespace (
  cluster: NetnsCluster, ref: HostRef, args: string[],
  opts: { dataDir: string, env?: Record<string, string>, readyTimeoutMs?: number }
): Promise<AgentProcess> {
  const host = cluster.host(ref)
  const child = cluster.spawn(host, process.execPath, [MESHVIRT_BIN, 'agent', '--data-dir', opts.dataDir, '--listen', `/ip4/${host.addr}/tcp/7946`, ...args],
    { ...process.env, MESHVIRT_TIMING: 'local', ...opts.env })
  return await agentProcess(child, { dataDir: opts.dataDir, listenHost: host.addr, where: `in ${host.ns}`, ...(opts.readyTimeoutMs !== undefined ? { readyTimeoutMs: opts.readyTimeoutMs } : {}) })
}
