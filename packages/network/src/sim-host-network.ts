import { bridgeName, tapName, vxlanName } from './identity.js'
import { HostNetworkError } from './types.js'
import type { HostNetwork, NetworkConfig, NetworkInventory, NetworkPeers, PortConfig } from './types.js'
import { validateAddress, validateNetwork, validatePeers, validatePort } from './validation.js'

/** What the simulated host holds, as copies (a test may keep and compare them). */
export interface SimNetworkState {
  networks: NetworkConfig[]
  ports: Array<PortConfig & { tap: string }>
  peers: Record<string, NetworkPeers>
  /** The underlay addresses VXLAN is accepted from; undefined: never set (every address). */
  tunnelPeers?: string[]
  /** How many times each kind of change was applied: a second identical call adds nothing. */
  changes: { networks: number, ports: number, peers: number }
}

/**
 * An in-memory HostNetwork for control-plane tests and benchmarks: it validates like the Linux
 * driver, refuses what it refuses (unknown network, clashing VXLAN id, address or MAC), and records
 * the desired state instead of programming a kernel.
 */
export class SimHostNetwork implements HostNetwork {
  readonly driver = 'sim' as const
  private readonly networks = new Map<string, NetworkConfig>()
  private readonly ports = new Map<string, PortConfig & { tap: string }>()
  private readonly peers = new Map<string, NetworkPeers>()
  private readonly changes = { networks: 0, ports: 0, peers: 0 }
  private tunnelPeers: string[] | undefined
  private closed = false

  async ensureNetwork (net: NetworkConfig): Promise<void> {
    this.open()
    validateNetwork(net)
    for (const other of this.networks.values()) {
      if (other.vni === net.vni && other.name !== net.name) throw new HostNetworkError(`network ${net.name}: VXLAN id ${net.vni} is already network ${other.name}'s on this host`)
    }
    const before = this.networks.get(net.name)
    if (before !== undefined && before.vni !== net.vni) throw new HostNetworkError(`network ${net.name} has VXLAN id ${before.vni} here, not ${net.vni}: remove it first`)
    if (before !== undefined && JSON.stringify(before) === JSON.stringify(net)) return
    this.networks.set(net.name, { ...net })
    if (!this.peers.has(net.name)) this.peers.set(net.name, { floodTo: [], nics: [] })
    this.changes.networks++
  }

  async attachPort (port: PortConfig): Promise<{ tap: string }> {
    this.open()
    const net = this.known(port.network)
    validatePort(port, net)
    const tap = tapName(port.vmId, port.nicIndex)
    for (const p of this.ports.values()) {
      if (p.tap !== tap && p.network === port.network && (p.mac === port.mac || p.ip === port.ip)) {
        throw new HostNetworkError(`NIC ${port.nicIndex} of VM ${port.vmId}: ${p.mac === port.mac ? port.mac : port.ip} is already NIC ${p.nicIndex} of VM ${p.vmId}'s on ${port.network}`)
      }
    }
    const next = { ...port, tap }
    if (JSON.stringify(this.ports.get(tap)) !== JSON.stringify(next)) {
      this.ports.set(tap, next)
      this.changes.ports++
    }
    return { tap }
  }

  async detachPort (network: string, vmId: string, nicIndex: number): Promise<void> {
    this.open()
    const tap = tapName(vmId, nicIndex)
    if (this.ports.get(tap)?.network === network && this.ports.delete(tap)) this.changes.ports++
  }

  async setPeers (network: string, peers: NetworkPeers, opts: { prune?: boolean } = {}): Promise<void> {
    this.open()
    const net = this.known(network)
    validatePeers(peers, net)
    if (opts.prune === false) {
      // Adds and updates only: what the new peers do not mention stays.
      const held = this.peers.get(network) ?? { floodTo: [], nics: [] }
      const macs = new Set(peers.nics.map((n) => n.mac))
      peers = { floodTo: [...new Set([...held.floodTo, ...peers.floodTo])], nics: [...held.nics.filter((n) => !macs.has(n.mac)), ...peers.nics] }
    }
    const next = { floodTo: [...new Set(peers.floodTo)].sort(), nics: peers.nics.map((n) => ({ ...n })).sort((a, b) => a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0) }
    if (JSON.stringify(this.peers.get(network)) === JSON.stringify(next)) return
    this.peers.set(network, next)
    this.changes.peers++
  }

  async removeNetwork (name: string): Promise<void> {
    this.open()
    if (!this.networks.delete(name)) return
    this.peers.delete(name)
    for (const [tap, p] of this.ports) if (p.network === name) this.ports.delete(tap)
    this.changes.networks++
  }

  async inventory (): Promise<NetworkInventory> {
    const networks = [...this.networks.values()].map((n) => ({ vni: n.vni, bridge: bridgeName(n.vni), vxlan: true }))
    const ports = [...this.ports.values()].map((p) => ({ tap: p.tap, bridge: bridgeName(this.networks.get(p.network)?.vni ?? 0) }))
    return { networks, ports }
  }

  async close (): Promise<void> {
    this.closed = true
  }

  /** A copy of everything the simulated host holds. */
  async setTunnelPeers (underlays: readonly string[]): Promise<void> {
    this.open()
    for (const u of underlays) validateAddress(u, 'tunnel peer')
    this.tunnelPeers = [...new Set(underlays)].sort()
  }

  state (): SimNetworkState {
    return structuredClone({
      networks: [...this.networks.values()],
      ports: [...this.ports.values()],
      peers: Object.fromEntries(this.peers),
      changes: this.changes,
      ...(this.tunnelPeers === undefined ? {} : { tunnelPeers: this.tunnelPeers })
    })
  }

  /** The VXLAN device a network would have here (for tests that print what the Linux driver would name). */
  vxlanOf (network: string): string {
    return vxlanName(this.known(network).vni)
  }

  private known (network: string): NetworkConfig {
    const net = this.networks.get(network)
    if (net === undefined) throw new HostNetworkError(`network ${network} is not on this host: call ensureNetwork first`)
    return net
  }

  private open (): void {
    if (this.closed) throw new HostNetworkError('this SimHostNetwork is closed')
  }
}
