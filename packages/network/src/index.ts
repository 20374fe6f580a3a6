/**
 * @meshvirt/network — the host's side of meshvirt's virtual networks: Linux bridges, VXLAN with
 * learning off, taps, forwarding entries programmed from gossip, DHCP/DNS (dnsmasq) and NAT
 * (nftables). Depends on nothing of ours, as `hypervisor` does.
 */
export * from './cidr.js'
export * from './identity.js'
export * from './types.js'
