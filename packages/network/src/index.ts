/**
 * @meshvirt/network — the host's side of meshvirt's virtual networks: Linux bridges, VXLAN
 * (learning follows a moved MAC at once), taps, forwarding entries programmed from gossip, DHCP/DNS (dnsmasq) and NAT
 * (nftables). Depends on nothing of ours, as `hypervisor` does.
 *
 * @example
 * ```ts
 * const host = new LinuxHostNetwork({ underlay: '10.77.0.1', stateDir: '/var/lib/meshvirt/net' })
 * await host.ensureNetwork({ name: 'web', vni: 7, subnet: '10.7.0.0/24', gateway: '10.7.0.1', mtu: defaultGuestMtu(1500), nat: true, dhcp: true })
 * const { tap } = await host.attachPort({ network: 'web', vmId, nicIndex: 0, mac: nicMac(vmId, 0), ip: '10.7.0.10', hostname: 'www' })
 * await host.setPeers('web', { floodTo: ['10.77.0.2'], nics: [{ mac, ip: '10.7.0.11', hostname: 'db', underlay: '10.77.0.2' }] })
 * ```
 */
export * from './cidr.js'
export * from './constants.js'
export * from './diff.js'
export * from './dnsmasq-config.js'
export * from './forwarding.js'
export * from './identity.js'
export * from './linux-host-network.js'
export * from './nft-ruleset.js'
export * from './sim-host-network.js'
export * from './types.js'
export type { CommandResult, CommandRunner } from './runner.js'
export { execaRunner } from './runner.js'
export type { ProcessTable } from './dnsmasq-process.js'
export { validateNetwork, validatePeers, validatePort } from './validation.js'
