/**
 * The network benchmark's cluster: hosts in network namespaces (scripts/netns: one switch, one
 * address per host), a `meshvirt agent` alone in each (failover-cluster.ts startAgent with `netns`),
 * and what each host's kernel forwards: `bridge monitor fdb` running
 * in every host's namespace (each line stamped when it reaches us) and `bridge -j fdb show` polls.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { REPO } from './harness.js'

const NETNS_SCRIPT = join(REPO, 'scripts', 'netns')

export interface NsHost { index: number, ns: string, addr: string }

async function run (file: string, args: string[], timeoutMs = 30_000): Promise<{ ok: boolean, stdout: string, stderr: string }> {
  return await new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => { resolve({ ok: err === null, stdout, stderr }) })
  })
}

async function netnsScript (args: string[]): Promise<string> {
  const r = await run('bash', [NETNS_SCRIPT, ...args])
  if (!r.ok) throw new Error(`scripts/netns ${args.join(' ')} failed: ${r.stderr.trim()}`)
  return r.stdout
}

/** `size` hosts PREFIX-h1…hN on SUBNET.1…N (replacing whatever a crashed run left under the prefix). */
export async function netnsUp (prefix: string, size: number, subnet: string): Promise<NsHost[]> {
  await netnsScript(['--prefix', prefix, 'up', String(size), '--subnet', subnet])
  const hosts: NsHost[] = []
  for (let i = 1; i <= size; i++) hosts.push({ index: i, ns: `${prefix}-h${i}`, addr: (await netnsScript(['--prefix', prefix, 'addr', String(i)])).trim() })
  return hosts
}

/** Deletes the prefix's namespaces (call it once every process we started in them has been stopped by pid). */
export async function netnsDown (prefix: string): Promise<void> {
  await netnsScript(['--prefix', prefix, 'down'])
}

export async function inNs (ns: string, args: string[]): Promise<string> {
  const r = await run('ip', ['netns', 'exec', ns, ...args])
  if (!r.ok) throw new Error(`[${ns}] ${args.join(' ')} failed: ${r.stderr.trim()}`)
  return r.stdout
}

/**
 * Where `mac` points in the VXLAN device `dev` of namespace `ns` (the `dst` of its own entry), or
 * undefined. The device's list also holds what the bridge learned on that port (no `dst`): skipped.
 */
export async function fdbDst (ns: string, dev: string, mac: string): Promise<string | undefined> {
  const r = await run('ip', ['netns', 'exec', ns, 'bridge', '-j', 'fdb', 'show', 'dev', dev])
  if (!r.ok) return undefined
  const entries = JSON.parse(r.stdout === '' ? '[]' : r.stdout) as Array<{ mac: string, dst?: string }>
  return entries.find((e) => e.mac === mac && e.dst !== undefined)?.dst
}

export interface FdbEvent { at: number, mac: string, dev: string, dst: string, deleted: boolean }

/**
 * `bridge monitor fdb` in one host's namespace, for the whole run: every line is stamped (Date.now())
 * when it reaches this process (iproute2 flushes each message), so the first instant a host's kernel
 * had an entry is known without polling.
 */
export class FdbMonitor {
  readonly events: FdbEvent[] = []
  private readonly child: ChildProcess

  constructor (readonly host: NsHost) {
    this.child = spawn('ip', ['netns', 'exec', host.ns, 'bridge', 'monitor', 'fdb'], { stdio: ['ignore', 'pipe', 'ignore'] })
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const at = Date.now()
      const m = /^(Deleted )?([0-9a-f:]{17}) dev (\S+) dst (\S+)/.exec(line)
      if (m !== null) this.events.push({ at, deleted: m[1] !== undefined, mac: m[2] as string, dev: m[3] as string, dst: m[4] as string })
    })
  }

  /** The first instant at or after `since` at which `mac` was (re)pointed at `dst` on `dev`. */
  firstSeen (dev: string, mac: string, dst: string, since: number): number | undefined {
    return this.events.find((e) => e.at >= since && !e.deleted && e.dev === dev && e.mac === mac && e.dst === dst)?.at
  }

  async stop (): Promise<void> {
    const pid = this.child.pid
    if (pid === undefined || this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => { this.child.once('exit', () => { resolve() }) })
    try { process.kill(pid, 'SIGTERM') } catch { return }
    await exited
  }
}
