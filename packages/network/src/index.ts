/**
 * @meshvirt/network — the host's side of meshvirt's virtual networks: Linux bridges, VXLAN with
 * learning off, taps, forwarding entries programmed from gossip, DHCP/DNS (dnsmasq) and NAT
 * (nftables). Depends on nothing of ours, as `hypervisor` does.
 */
export * from './cidr.js'
export * from './constants.js'
export * from './diff.js'
export * from './dnsmasq-config.js'
export * from './forwarding.js'
export * from './identity.js'
export * from './nft-ruleset.js'
export * from './types.js'
export { validateNetwork, validatePeers, validatePort } from './validation.js'
