/**
 * A private L2 network for tests of guests with NICs: one network namespace holding a Linux bridge
 * (with an address, the "host" side), the guests' taps on it, and optionally dnsmasq serving DHCP on
 * it. Nothing touches the root namespace's interfaces: deleting the namespace removes the bridge and
 * every tap. QEMU runs inside through `NamespacedDrivers` (fixtures/netns-driver.mjs).
 * Needs root and iproute2.
 */
import { mkdir, readdir } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa, type ResultPromise } from 'execa'
import type { VmSpec } from '../src/index.js'

/** Every namespace these tests create starts with this; a crashed run's are removed by `removeStaleLabs`. */
export const LAB_PREFIX = 'mvhn-'
export const BRIDGE = 'mvhnbr0'

export async function ip (...args: string[]): Promise<string> {
  return (await execa('ip', args)).stdout
}

/** Root with iproute2: otherwise the suite is skipped. */
export async function canMakeNamespaces (): Promise<boolean> {
  if (process.getuid?.() !== 0) return false
  return await execa('ip', ['netns', 'list']).then(() => true, () => false)
}

export class NetnsLab {
  readonly ns: string
  private readonly dnsmasqs: ResultPromise[] = []
  private busybox: string | undefined

  constructor (readonly subnet: string, ns = `${LAB_PREFIX}${process.pid}`) {
    this.ns = ns
  }

  /** The namespace, its loopback, and the bridge with address `<subnet>.1/24`. */
  async up (): Promise<void> {
    await this.down()
    await ip('netns', 'add', this.ns)
    await this.exec('ip', 'link', 'set', 'lo', 'up')
    await this.exec('ip', 'link', 'add', BRIDGE, 'type', 'bridge')
    await this.exec('ip', 'addr', 'add', `${this.subnet}.1/24`, 'dev', BRIDGE)
    await this.exec('ip', 'link', 'set', BRIDGE, 'up')
  }

  /** A persistent tap on the bridge, as the agent creates it before starting a VM. */
  async addTap (name: string): Promise<void> {
    await this.exec('ip', 'tuntap', 'add', 'dev', name, 'mode', 'tap')
    await this.exec('ip', 'link', 'set', name, 'master', BRIDGE)
    await this.exec('ip', 'link', 'set', name, 'up')
  }

  async exec (...argv: string[]): Promise<string> {
    return (await execa('ip', ['netns', 'exec', this.ns, ...argv])).stdout
  }

  /**
   * `ping` inside the namespace (the bridge's side), with the busybox the test guest is built from:
   * the host needs no ping of its own.
   */
  ping (...args: string[]): ResultPromise {
    if (this.busybox === undefined) throw new Error('no busybox: call useBusybox() first')
    return execa('ip', ['netns', 'exec', this.ns, this.busybox, 'ping', ...args])
  }

  /** Unpack busybox-static from the guest's package cache (scripts/build-guest keeps the .deb). */
  async useBusybox (guestDir: string, into: string): Promise<void> {
    const deb = (await readdir(join(guestDir, 'debs'))).find((f) => f.startsWith('busybox-static_'))
    if (deb === undefined) throw new Error(`no busybox-static .deb in ${guestDir}/debs: run scripts/build-guest`)
    await execa('dpkg-deb', ['-x', join(guestDir, 'debs', deb), into])
    this.busybox = join(into, 'bin', 'busybox')
  }

  /**
   * dnsmasq as DHCP server only (port=0: no DNS) on the bridge, with fixed MAC → address entries, a
   * router and an MTU; resolves once it listens.
   */
  async dnsmasq (dir: string, hosts: Array<{ mac: string, ip: string }>): Promise<void> {
    await mkdir(dir, { recursive: true })
    const proc = execa('ip', ['netns', 'exec', this.ns, '/usr/sbin/dnsmasq',
      '--keep-in-foreground', '--log-facility=-', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--port=0', '--user=root',
      `--interface=${BRIDGE}`, '--bind-interfaces', '--no-ping', `--pid-file=${dir}/dnsmasq.pid`,
      `--dhcp-leasefile=${dir}/dnsmasq.leases`, `--dhcp-range=${this.subnet}.100,${this.subnet}.199,255.255.255.0,1h`,
      `--dhcp-option=option:router,${this.subnet}.1`, '--dhcp-option=option:mtu,1400', ...hosts.map((h) => `--dhcp-host=${h.mac},${h.ip}`)
    ], { reject: false, buffer: false })
    this.dnsmasqs.push(proc)
    let said = ''
    await new Promise<void>((resolve, reject) => {
      proc.stderr?.on('data', (chunk: Buffer) => {
        said += chunk.toString()
        if (said.includes('sockets bound exclusively')) resolve()
      })
      void proc.then(() => { reject(new Error(`dnsmasq exited: ${said}`)) })
    })
  }

  /** Kill what runs inside (QEMU, dnsmasq, drivers), then delete the namespace with its bridge and taps. */
  async down (): Promise<void> {
    for (const proc of this.dnsmasqs.splice(0)) { proc.kill('SIGKILL'); await proc }
    await removeNamespace(this.ns)
  }
}

async function removeNamespace (ns: string): Promise<void> {
  const pids = (await execa('ip', ['netns', 'pids', ns], { reject: false })).stdout.split('\n').filter((p) => /^\d+$/.test(p))
  for (const pid of pids) { try { process.kill(Number(pid), 'SIGKILL') } catch { /* gone */ } }
  await execa('ip', ['netns', 'del', ns], { reject: false })
}

/** Namespaces of earlier runs whose test process is gone (a crash skipped its afterAll). */
export async function removeStaleLabs (): Promise<void> {
  const list = (await execa('ip', ['netns', 'list'], { reject: false })).stdout
  for (const ns of list.split('\n').map((l) => l.split(' ')[0] ?? '')) {
    const pid = Number(ns.slice(LAB_PREFIX.length))
    if (!ns.startsWith(LAB_PREFIX) || !Number.isInteger(pid)) continue
    try { process.kill(pid, 0) } catch { await removeNamespace(ns) }
  }
}

interface Pending { resolve: (value: unknown) => void, reject: (err: Error) => void }

/** QemuHypervisor calls served by fixtures/netns-driver.mjs inside the lab's namespace. */
export class NamespacedDrivers {
  private readonly child: ResultPromise
  private readonly pending = new Map<number, Pending>()
  private seq = 0
  private buffer = ''
  stderr = ''

  constructor (lab: NetnsLab, imageDirs: string[]) {
    const script = fileURLToPath(new URL('./fixtures/netns-driver.mjs', import.meta.url))
    this.child = execa('ip', ['netns', 'exec', lab.ns, process.execPath, script], {
      env: { MV_DRIVER_CONFIG: JSON.stringify({ imageDirs }) }, reject: false, buffer: false, stdin: 'pipe'
    })
    this.child.stdout?.on('data', (chunk: Buffer) => { this.read(chunk.toString()) })
    this.child.stderr?.on('data', (chunk: Buffer) => { this.stderr += chunk.toString() })
    void this.child.then(() => {
      for (const p of this.pending.values()) p.reject(new Error(`netns driver exited: ${this.stderr.slice(-500)}`))
      this.pending.clear()
    })
  }

  /** `method` of the driver for `dataDir`, e.g. call(dir, 'start', 'vm-1'); errors keep their code. */
  async call<T = unknown> (dataDir: string, method: string, ...args: unknown[]): Promise<T> {
    const seq = ++this.seq
    const reply = new Promise<T>((resolve, reject) => { this.pending.set(seq, { resolve: resolve as (v: unknown) => void, reject }) })
    this.child.stdin?.write(JSON.stringify({ seq, dataDir, method, args }) + '\n')
    return await reply
  }

  async close (): Promise<void> {
    this.child.stdin?.end()
    const exited = await Promise.race([this.child.then(() => true), new Promise((resolve) => setTimeout(resolve, 5000, false))])
    if (exited !== true) { this.child.kill('SIGKILL'); await this.child }
  }

  private read (text: string): void {
    this.buffer += text
    let nl: number
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl)
      this.buffer = this.buffer.slice(nl + 1)
      const reply = JSON.parse(line) as { seq: number, result?: unknown, error?: { code?: string, name?: string, message: string } }
      const pending = this.pending.get(reply.seq)
      this.pending.delete(reply.seq)
      if (reply.error !== undefined) pending?.reject(Object.assign(new Error(reply.error.message), reply.error))
      else pending?.resolve(reply.result)
    }
  }
}

/**
 * Type a command line into the guest's serial shell (prompt `guest# `) and keep the port open until
 * `answered` resolves (it reads the serial log): QEMU may drop input still unread when a client hangs up.
 */
export async function typeOnSerial<T> (serialSocket: string, line: string, answered: () => Promise<T>): Promise<T> {
  const socket = connect(serialSocket)
  try {
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    socket.resume() // drain what the guest prints: it is in the serial log too
    socket.write(`${line}\n`)
    return await answered()
  } finally {
    socket.destroy()
  }
}

/** A test-guest spec with NICs (given as [mac, tap]). */
export function nicSpec (id: string, guest: { kernel: string, initrd: string, cmdline: string }, args: string, nics: Array<[string, string]>): VmSpec {
  return {
    id, vcpus: 1, memoryMiB: 128,
    boot: { kind: 'kernel', kernel: guest.kernel, initrd: guest.initrd, cmdline: `${guest.cmdline} ${args}`.trim() },
    nics: nics.map(([mac, tap]) => ({ mac, tap }))
  }
}
