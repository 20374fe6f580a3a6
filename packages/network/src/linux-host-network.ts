import { mkdir, readFile, readdir, rm, rmdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { DNSMASQ, SUPERVISE_INTERVAL_MS } from './constants.js'
import { dnsmasqArgs, renderDhcpHosts, renderDnsHosts } from './dnsmasq-config.js'
import type { DnsmasqPaths } from './dnsmasq-config.js'
import { findDnsmasq, hup, realProcesses, startDnsmasq, stopProcess } from './dnsmasq-process.js'
import type { ProcessTable } from './dnsmasq-process.js'
import { programForwarding, type ForwardingTables } from './forwarding-programmer.js'
import { bridgeName, tapName, vxlanName } from './identity.js'
import { ensureBridge, ensureVxlan } from './devices.js'
import type { Undo } from './devices.js'
import { deleteLink, listLinks, readLink, setLink } from './links.js'
import { assertSearchable, writeIfChanged } from './state-files.js'
import { renderRuleset } from './nft-ruleset.js'
import { execaRunner, mustRun } from './runner.js'
import type { CommandRunner } from './runner.js'
import { HostNetworkError } from './types.js'
import type { HostNetwork, NetworkConfig, NetworkInventory, NetworkPeers, PortConfig } from './types.js'
import { validateAddress, validateNetwork, validatePeers, validatePort } from './validation.js'

export interface LinuxHostNetworkInit {
  /** This host's underlay IPv4 address: the VXLAN source, and what other hosts' entries point at. */
  underlay: string
  /** Where each network's dnsmasq files live (`<stateDir>/<network>/`); must be readable by dnsmasq's user. */
  stateDir: string
  /** The interface NAT masquerades to; default: the default route's, or any non-meshvirt interface if none. */
  uplink?: string
  /** Default: /usr/sbin/dnsmasq. */
  dnsmasq?: string
  /** Default: execa, no shell. */
  run?: CommandRunner
  /** How often dead dnsmasqs are restarted; 0 turns the periodic check off. Default SUPERVISE_INTERVAL_MS. */
  superviseIntervalMs?: number
  /** Default /proc/sys (ip_forward); tests point it elsewhere. */
  procSys?: string
  /** Default: /proc and process.kill. */
  processes?: ProcessTable
  /** What the driver did on its own (a dnsmasq restarted by supervision). */
  log?: (message: string) => void
}

interface NetworkState {
  net: NetworkConfig
  ports: Map<string, PortConfig>
  peers: NetworkPeers
  pid?: number
  /** The VXLAN device's entries as the last setPeers left them; undefined: read the kernel next time. */
  tables?: ForwardingTables
}

const CONFIG_FILE = 'network.json'
/** The tunnel peers last set, so that a restarted driver keeps VXLAN limited while its agent rejoins. */
const TUNNEL_PEERS_FILE = '.tunnel-peers.json'

/**
 * The Linux driver: per network a bridge holding the gateway, a VXLAN device (learning on, ARP
 * proxied from neighbour entries), taps for the guests, a dnsmasq for DHCP/DNS and the driver's
 * nftables table. Every step reads what the kernel has first, so each call is idempotent and an
 * agent restart adopts what it finds. Calls are serialised.
 */
export class LinuxHostNetwork implements HostNetwork {
  readonly driver = 'linux' as const
  private readonly run: CommandRunner
  private readonly processes: ProcessTable
  private readonly networks = new Map<string, NetworkState>()
  private queue: Promise<unknown> = Promise.resolve()
  private timer?: NodeJS.Timeout
  private closed = false
  private tunnelPeers: string[] | undefined
  /** Whether the list kept in the state dir was read (once, at the first rules written). */
  private tunnelPeersRead = false

  constructor (private readonly init: LinuxHostNetworkInit) {
    validateAddress(init.underlay, 'underlay')
    this.run = init.run ?? execaRunner
    this.processes = init.processes ?? realProcesses
  }

  async ensureNetwork (net: NetworkConfig): Promise<void> {
    validateNetwork(net)
    return await this.serial(async () => {
      for (const s of this.networks.values()) {
        if (s.net.vni === net.vni && s.net.name !== net.name) throw new HostNetworkError(`network ${net.name}: VXLAN id ${net.vni} is already network ${s.net.name}'s on this host`)
      }
      const before = this.networks.get(net.name)
      if (before !== undefined && before.net.vni !== net.vni) throw new HostNetworkError(`network ${net.name} has VXLAN id ${before.net.vni} here, not ${net.vni}: remove it first`)
      const undo: Undo = []
      try {
        await ensureBridge(this.run, net, undo)
        await ensureVxlan(this.run, net, this.init.underlay, undo)
        // The devices may have been re-made: the next setPeers reads their tables again.
        const state: NetworkState = before === undefined ? { net, ports: new Map(), peers: { floodTo: [], nics: [] } } : { ...before, net, tables: undefined }
        await this.ensureFiles(state, undo)
        this.networks.set(net.name, state)
        undo.push(async () => before === undefined ? this.networks.delete(net.name) : this.networks.set(net.name, before))
        await this.superviseOne(state, undo)
        await this.applyRules()
      } catch (err) {
        for (const step of undo.reverse()) await step().catch(() => {})
        throw err
      }
      this.startSupervision()
    })
  }

  async attachPort (port: PortConfig): Promise<{ tap: string }> {
    return await this.serial(async () => {
      const state = this.known(port.network)
      validatePort(port, state.net)
      const tap = tapName(port.vmId, port.nicIndex)
      for (const [other, p] of state.ports) {
        if (other !== tap && (p.mac === port.mac || p.ip === port.ip)) throw new HostNetworkError(`NIC ${port.nicIndex} of VM ${port.vmId}: ${p.mac === port.mac ? port.mac : port.ip} is already NIC ${p.nicIndex} of VM ${p.vmId}'s on ${port.network}`)
      }
      const bridge = bridgeName(state.net.vni)
      let link = await readLink(this.run, tap)
      if (link !== undefined && link.tap !== true) throw new HostNetworkError(`${tap} exists and is not a tap (${link.kind ?? 'unknown kind'})`)
      const created = link === undefined
      if (created) {
        await mustRun(this.run, 'ip', ['tuntap', 'add', 'dev', tap, 'mode', 'tap'])
        link = await readLink(this.run, tap)
      }
      try {
        if (link === undefined) throw new HostNetworkError(`${tap} vanished right after it was created`)
        await setLink(this.run, link, { mtu: state.net.mtu, master: bridge })
        state.ports.set(tap, { ...port })
        await this.writeFiles(state)
      } catch (err) {
        state.ports.delete(tap)
        if (created) await deleteLink(this.run, tap).catch(() => {})
        throw err
      }
      await this.superviseOne(state, [])
      return { tap }
    })
  }

  async detachPort (network: string, vmId: string, nicIndex: number): Promise<void> {
    await this.serial(async () => {
      const tap = tapName(vmId, nicIndex)
      await deleteLink(this.run, tap)
      const state = this.networks.get(network)
      if (state !== undefined && state.ports.delete(tap)) await this.writeFiles(state)
    })
  }

  async setPeers (network: string, peers: NetworkPeers, opts: { prune?: boolean } = {}): Promise<void> {
    await this.serial(async () => {
      const state = this.known(network)
      validatePeers(peers, state.net)
      const known = state.tables
      state.tables = undefined
      const { tables } = await programForwarding(this.run, vxlanName(state.net.vni), peers, { self: this.init.underlay, prune: opts.prune !== false, known })
      state.tables = tables
      state.peers = { floodTo: [...peers.floodTo], nics: peers.nics.map((n) => ({ ...n })) }
      await this.writeFiles(state)
    })
  }

  async setTunnelPeers (underlays: readonly string[]): Promise<void> {
    for (const u of underlays) validateAddress(u, 'tunnel peer')
    const next = [...new Set(underlays)].sort()
    await this.serial(async () => {
      if (JSON.stringify(next) === JSON.stringify(this.tunnelPeers)) return
      const before = this.tunnelPeers
      this.tunnelPeers = next
      try {
        if (this.networks.size > 0) await this.applyRules()
        await mkdir(this.init.stateDir, { recursive: true })
        await writeFile(join(this.init.stateDir, TUNNEL_PEERS_FILE), JSON.stringify(next) + '\n')
      } catch (err) {
        this.tunnelPeers = before
        throw err
      }
    })
  }

  async removeNetwork (name: string): Promise<void> {
    await this.serial(async () => {
      const net = this.networks.get(name)?.net ?? await this.persisted(name)
      if (net === undefined) return
      const bridge = bridgeName(net.vni)
      for (const link of await listLinks(this.run)) {
        if (link.tap === true && link.master === bridge) await deleteLink(this.run, link.name)
      }
      await deleteLink(this.run, vxlanName(net.vni))
      await deleteLink(this.run, bridge)
      const running = await findDnsmasq(this.paths(name).pidFile, bridge, this.processes)
      if (running !== undefined) await stopProcess(running.pid, this.processes)
      await rm(join(this.init.stateDir, name), { recursive: true, force: true })
      this.networks.delete(name)
      await this.applyRules()
    })
  }

  async inventory (): Promise<NetworkInventory> {
    const links = await listLinks(this.run)
    const pids = new Map<number, number>()
    const dirs = await readdir(this.init.stateDir).catch(() => [] as string[])
    for (const name of dirs) {
      const net = await this.persisted(name)
      if (net === undefined) continue
      const running = await findDnsmasq(this.paths(name).pidFile, bridgeName(net.vni), this.processes)
      if (running !== undefined) pids.set(net.vni, running.pid)
    }
    const names = new Set(links.map((l) => l.name))
    const networks: NetworkInventory['networks'] = []
    for (const l of links) {
      const m = /^mvbr([0-9]+)$/.exec(l.name)
      if (m === null || l.kind !== 'bridge') continue
      const vni = Number(m[1])
      const pid = pids.get(vni)
      networks.push({ vni, bridge: l.name, vxlan: names.has(vxlanName(vni)), ...(pid === undefined ? {} : { dhcpPid: pid }) })
    }
    const ports = links.filter((l) => l.tap === true && l.name.startsWith('mvt'))
      .map((l) => (l.master === undefined ? { tap: l.name } : { tap: l.name, bridge: l.master }))
    return { networks, ports }
  }

  async close (): Promise<void> {
    this.closed = true
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    await this.queue.catch(() => {})
    await this.removeUnusedStateDir()
  }

  /**
   * A host that never had a network keeps nothing under /run: when the state dir holds no network
   * (only the tunnel-peer list, which the mesh sets again at the next start), it goes, and so does
   * its parent if that is left empty.
   */
  private async removeUnusedStateDir (): Promise<void> {
    if (this.networks.size > 0) return
    const entries = await readdir(this.init.stateDir).catch(() => undefined)
    if (entries === undefined || entries.some((e) => e !== TUNNEL_PEERS_FILE)) return
    await rm(this.init.stateDir, { recursive: true, force: true }).catch(() => {})
    await rmdir(dirname(this.init.stateDir)).catch(() => {})
  }

  private async serial<T> (work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work)
    this.queue = next.catch(() => {})
    return await next
  }

  private known (network: string): NetworkState {
    const state = this.networks.get(network)
    if (state === undefined) throw new HostNetworkError(`network ${network} is not on this host: call ensureNetwork first`)
    return state
  }

  private paths (name: string): DnsmasqPaths & { dir: string, config: string } {
    const dir = join(this.init.stateDir, name)
    return { dir, config: join(dir, CONFIG_FILE), dhcpHosts: join(dir, 'dhcp-hosts'), dnsHosts: join(dir, 'dns-hosts'), pidFile: join(dir, 'dnsmasq.pid'), logFile: join(dir, 'dnsmasq.log') }
  }

  private async persisted (name: string): Promise<NetworkConfig | undefined> {
    const text = await readFile(this.paths(name).config, 'utf8').catch(() => undefined)
    return text === undefined ? undefined : JSON.parse(text) as NetworkConfig
  }

  /** The network's directory and config; on adoption the hosts files are left as found until ports and peers are re-sent. */
  private async ensureFiles (state: NetworkState, undo: Undo): Promise<void> {
    const p = this.paths(state.net.name)
    const existed = await readFile(p.config, 'utf8').then(() => true, () => false)
    await mkdir(p.dir, { recursive: true, mode: 0o755 })
    if (!existed) undo.push(async () => await rm(p.dir, { recursive: true, force: true }))
    await assertSearchable(p.dir)
    await writeIfChanged(p.config, JSON.stringify(state.net, null, 2) + '\n')
    for (const file of [p.dhcpHosts, p.dnsHosts]) {
      if (await readFile(file).then(() => false, () => true)) await writeIfChanged(file, '')
    }
  }

  /** Rewrites the hosts files from what the driver knows; HUPs dnsmasq when either changed. */
  private async writeFiles (state: NetworkState): Promise<void> {
    const p = this.paths(state.net.name)
    const ports = [...state.ports.values()]
    const a = await writeIfChanged(p.dhcpHosts, renderDhcpHosts(ports))
    const b = await writeIfChanged(p.dnsHosts, renderDnsHosts(ports, state.peers.nics))
    if ((a || b) && state.pid !== undefined) hup(state.pid, this.processes)
  }

  /** Adopts the network's dnsmasq if it runs with the arguments wanted now; (re)starts it otherwise. */
  private async superviseOne (state: NetworkState, undo: Undo): Promise<void> {
    const bridge = bridgeName(state.net.vni)
    const p = this.paths(state.net.name)
    const binary = this.init.dnsmasq ?? DNSMASQ
    const args = dnsmasqArgs(state.net, bridge, p)
    const running = await findDnsmasq(p.pidFile, bridge, this.processes)
    if (running !== undefined && running.argv.slice(1).join('\0') === args.join('\0')) {
      state.pid = running.pid
      return
    }
    if (running !== undefined) await stopProcess(running.pid, this.processes)
    state.pid = await startDnsmasq(this.run, binary, args, p.pidFile, bridge, this.processes)
    const pid = state.pid
    undo.push(async () => await stopProcess(pid, this.processes))
  }

  private startSupervision (): void {
    const every = this.init.superviseIntervalMs ?? SUPERVISE_INTERVAL_MS
    if (this.closed || this.timer !== undefined || every <= 0) return
    this.timer = setInterval(() => {
      void this.serial(async () => {
        for (const state of this.networks.values()) {
          const before = state.pid
          await this.superviseOne(state, []).catch((err: Error) => this.init.log?.(`dnsmasq for ${state.net.name}: ${err.message}`))
          if (state.pid !== before) this.init.log?.(`dnsmasq for ${state.net.name} restarted (pid ${before ?? '-'} → ${state.pid ?? '-'})`)
        }
      })
    }, every)
    this.timer.unref()
  }

  /** The whole nftables table from this host's networks, in one transaction; ip_forward on for NAT. */
  private async applyRules (): Promise<void> {
    if (!this.tunnelPeersRead) {
      this.tunnelPeersRead = true
      this.tunnelPeers ??= await readFile(join(this.init.stateDir, TUNNEL_PEERS_FILE), 'utf8')
        .then((text) => { const list = JSON.parse(text) as unknown; return Array.isArray(list) && list.every((u) => typeof u === 'string') ? list : undefined })
        .catch(() => undefined)
    }
    const nets = [...this.networks.values()].map((s) => s.net)
    const uplink = this.init.uplink ?? await this.defaultRouteInterface()
    const rules = nets.map((n) => ({ bridge: bridgeName(n.vni), subnet: n.subnet, gateway: n.gateway, nat: n.nat }))
    await mustRun(this.run, 'nft', ['-f', '-'], renderRuleset(rules, { underlay: this.init.underlay, ...(uplink === undefined ? {} : { uplink }), ...(this.tunnelPeers === undefined ? {} : { tunnelPeers: this.tunnelPeers }) }))
    if (nets.some((n) => n.nat)) {
      const file = join(this.init.procSys ?? '/proc/sys', 'net/ipv4/ip_forward')
      if ((await readFile(file, 'utf8').catch(() => '')).trim() !== '1') await writeFile(file, '1\n')
    }
  }

  private async defaultRouteInterface (): Promise<string | undefined> {
    const result = await this.run('ip', ['-j', '-4', 'route', 'show', 'default'])
    if (result.exitCode !== 0 || result.stdout.trim() === '') return undefined
    return (JSON.parse(result.stdout) as Array<{ dev?: string }>)[0]?.dev
  }
}
