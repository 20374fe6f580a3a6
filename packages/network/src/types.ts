/**
 * The host's side of a virtual network, in plain TypeScript types: what the agent asks of the
 * host's kernel (bridges, VXLAN devices, taps, forwarding and neighbour entries, DHCP/DNS, NAT).
 * The cluster's side (which networks exist, which NIC has which address where) is the agent's.
 */

/** A network as every host builds it. */
export interface NetworkConfig {
  /** The cluster-wide name, `[a-z0-9][a-z0-9-]{0,30}`. */
  name: string
  /** The VXLAN id, unique in the cluster (1 … 16,777,215); names the host's devices. */
  vni: number
  /** IPv4 CIDR, e.g. `10.10.0.0/24`. */
  subnet: string
  /** The distributed gateway: every host with ports on the network holds this address (and gatewayMac). */
  gateway: string
  /** The guests' MTU (DHCP option 26); the bridge and VXLAN device use it too. */
  mtu: number
  /** Masquerade the subnet to this host's uplink (egress without a gateway host). */
  nat: boolean
  /** Serve DHCP (static entries for this host's own NICs) on the bridge. DNS is served either way. */
  dhcp: boolean
}

/** One NIC of a VM on this host. */
export interface PortConfig {
  network: string
  vmId: string
  nicIndex: number
  mac: string
  /** The address claimed for the NIC (DHCP hands it out; DNS resolves `hostname` to it). */
  ip: string
  /** The VM's name. */
  hostname: string
}

/** A NIC on another host, as gossip tells it. */
export interface RemoteNic {
  mac: string
  ip: string
  /** The VM's name (DNS). */
  hostname: string
  /** The underlay address of the host it runs on. */
  underlay: string
}

/** What this host must know of the other hosts on one network (desired state; replaces the last). */
export interface NetworkPeers {
  /** Underlay addresses of the other hosts with ports on this network: broadcast goes only there. */
  floodTo: string[]
  /** NICs on other hosts: unicast forwarding entries (MAC → host) and neighbour entries (IP → MAC). */
  nics: RemoteNic[]
}

/** Devices and processes of the agent's found on this host (by their prefix). */
export interface NetworkInventory {
  networks: Array<{ vni: number, bridge: string, vxlan: boolean, dhcpPid?: number }>
  ports: Array<{ tap: string, bridge?: string }>
}

export interface HostNetwork {
  readonly driver: 'linux' | 'sim'
  /**
   * Creates, or adopts as found, the network's bridge (holding the gateway address and MAC), its
   * VXLAN device (learning on, ARP answered from neighbour entries), its filter and NAT rules and
   * its DHCP/DNS server. Idempotent: a restarted agent calls it for every network it has ports on
   * and running guests notice nothing.
   */
  ensureNetwork: (net: NetworkConfig) => Promise<void>
  /** Creates or adopts the NIC's tap on the network's bridge and its DHCP/DNS entry; returns the tap for QEMU. */
  attachPort: (port: PortConfig) => Promise<{ tap: string }>
  /** Removes the NIC's tap and entries (no-op when absent). */
  detachPort: (network: string, vmId: string, nicIndex: number) => Promise<void>
  /**
   * Programs forwarding for a network from gossip: adds what is missing, removes what is stale —
   * unless `prune` is false (an agent that just restarted has not heard every host yet: what it
   * does not know of is not gone), then it only adds and updates.
   */
  setPeers: (network: string, peers: NetworkPeers, opts?: { prune?: boolean }) => Promise<void>
  /**
   * The underlay addresses of the cluster's hosts: VXLAN packets from any other address are dropped
   * (the VXLAN devices learn from what they receive). Until it is first called, every address is.
   */
  setTunnelPeers: (underlays: readonly string[]) => Promise<void>
  /** Removes everything of the network from this host (no-op when absent). */
  removeNetwork: (name: string) => Promise<void>
  inventory: () => Promise<NetworkInventory>
  /** Stops supervising (DHCP servers keep running: guests keep their network while the agent restarts). */
  close: () => Promise<void>
}

/** A command the host could not run, with what it said. */
export class HostNetworkError extends Error {
  readonly code = 'ERR_HOST_NETWORK'
  constructor (message: string, readonly command?: string, readonly stderr?: string) {
    super(message)
    this.name = 'HostNetworkError'
  }
}
