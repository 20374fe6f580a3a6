import { NFT_TABLE, VXLAN_PORT } from './constants.js'

/**
 * The driver's nftables table as text for `nft -f`, rebuilt whole from the networks this host has
 * and loaded atomically (declare, delete, redefine: one transaction, so no packet sees a half table).
 * Rules that hold for every meshvirt bridge match the `mvbr*` wildcard, so a bridge the driver has
 * not (yet) listed after a restart is isolated all the same.
 */

export interface RulesetNetwork {
  bridge: string
  subnet: string
  gateway: string
  nat: boolean
}

export interface RulesetOptions {
  /** The interface NAT masquerades to; undefined: any interface that is not a meshvirt bridge. */
  uplink?: string
  /** This host's underlay address: its VXLAN packets skip connection tracking (see below). */
  underlay?: string
  /**
   * The underlay addresses VXLAN packets are accepted from (the cluster's hosts); others are dropped
   * before they reach a VXLAN device, which would learn from them. Undefined: every address (an
   * agent that has not heard the cluster yet).
   */
  tunnelPeers?: readonly string[]
  table?: string
}

const ALL = '"mvbr*"'

function q (name: string): string {
  return JSON.stringify(name)
}

function chain (name: string, hook: string, rules: string[]): string[] {
  return [`  chain ${name} {`, `    ${hook}`, ...rules.map((r) => `    ${r}`), '  }']
}

const TUNNELS = '"mvvx*"'

/** The whole script: the `inet` table and the `bridge` one; with no networks it only deletes them. */
export function renderRuleset (networks: readonly RulesetNetwork[], options: RulesetOptions = {}): string {
  const table = `inet ${options.table ?? NFT_TABLE}`
  const bridged = `bridge ${options.table ?? NFT_TABLE}`
  const head = `table ${table}\ndelete table ${table}\ntable ${bridged}\ndelete table ${bridged}\n`
  if (networks.length === 0) return head
  const sorted = [...networks].sort((a, b) => a.bridge < b.bridge ? -1 : a.bridge > b.bridge ? 1 : 0)
  const out = options.uplink === undefined ? `oifname != ${ALL}` : `oifname ${q(options.uplink)}`

  // Guests may reach the host only for DHCP, DNS and a ping of their gateway.
  const input = ['iifname ' + ALL + ' ct state established,related accept']
  for (const n of sorted) {
    const br = q(n.bridge)
    input.push(
      `iifname ${br} udp dport 67 accept`,
      `iifname ${br} ip daddr ${n.gateway} udp dport 53 accept`,
      `iifname ${br} ip daddr ${n.gateway} tcp dport 53 accept`,
      `iifname ${br} ip daddr ${n.gateway} icmp type echo-request accept`
    )
  }
  input.push(`iifname ${ALL} drop`)

  // Routed traffic: within a bridge (br_netfilter) yes, between bridges never, out only with NAT.
  const forward = sorted.map((n) => `iifname ${q(n.bridge)} oifname ${q(n.bridge)} accept`)
  forward.push(`oifname ${ALL} ct state established,related accept`)
  // A guest never speaks the tunnel's protocol to another host: with NAT it would arrive from this
  // host's own address, and the VXLAN devices learn where a MAC is from who sends its frames.
  forward.push(`iifname ${ALL} udp dport ${VXLAN_PORT} drop`)
  for (const n of sorted.filter((n) => n.nat)) forward.push(`iifname ${q(n.bridge)} ip saddr ${n.subnet} ${out} accept`)
  forward.push(`iifname ${ALL} drop`, `oifname ${ALL} drop`)

  // The tunnel's own UDP packets gain nothing from connection tracking and would pay a lookup per
  // frame (the NAT hook turns conntrack on for the whole netns). Untracked, not invalid: a host
  // firewall must accept udp/4789 from its peers explicitly either way.
  const from = options.underlay === undefined ? '' : `ip saddr ${options.underlay} `
  const to = options.underlay === undefined ? '' : `ip daddr ${options.underlay} `
  // Only the cluster's hosts may speak VXLAN to this one: the devices learn where a MAC is from who sends its frames.
  const peers = [...new Set(options.tunnelPeers ?? [])].sort()
  const peersOnly = options.tunnelPeers === undefined
    ? []
    : [`${to}udp dport ${VXLAN_PORT} ${peers.length === 0 ? '' : `ip saddr != { ${peers.join(', ')} } `}drop`]
  const postrouting = sorted.filter((n) => n.nat).map((n) => `ip saddr ${n.subnet} ip daddr != ${n.subnet} ${out} masquerade`)

  return head + [
    `table ${table} {`,
    ...chain('input', 'type filter hook input priority filter; policy accept;', input),
    ...chain('forward', 'type filter hook forward priority filter; policy accept;', forward),
    ...chain('postrouting', 'type nat hook postrouting priority srcnat; policy accept;', postrouting),
    ...chain('tunnel_in', 'type filter hook prerouting priority raw; policy accept;', [...peersOnly, `${to}udp dport ${VXLAN_PORT} notrack`]),
    ...chain('tunnel_out', 'type filter hook output priority raw; policy accept;', [`${from}udp dport ${VXLAN_PORT} notrack`]),
    '}',
    // DHCP stays on its host. Every host's dnsmasq answers as the same gateway (one address, one
    // MAC), authoritative for its own guests only: a request flooded to another host is refused
    // there (DHCPNAK), and a guest that hears that refusal before its own host's ACK starts over —
    // for as long as the race goes that way (seen on a loaded host). So DHCP never enters or leaves
    // a tunnel: bridged between ports, delivered to the host, or sent by it.
    `table ${bridged} {`,
    ...chain('dhcp_forward', 'type filter hook forward priority filter; policy accept;', [`iifname ${TUNNELS} udp dport { 67, 68 } drop`, `oifname ${TUNNELS} udp dport { 67, 68 } drop`]),
    ...chain('dhcp_input', 'type filter hook input priority filter; policy accept;', [`iifname ${TUNNELS} udp dport { 67, 68 } drop`]),
    ...chain('dhcp_output', 'type filter hook output priority filter; policy accept;', [`oifname ${TUNNELS} udp dport { 67, 68 } drop`]),
    '}'
  ].join('\n') + '\n'
}
