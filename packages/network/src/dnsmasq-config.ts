import { formatAddress, netmask, parseSubnet } from './cidr.js'
import type { NetworkConfig, PortConfig, RemoteNic } from './types.js'

/**
 * What a network's dnsmasq is told, as pure functions: its argv and the two files it re-reads on
 * SIGHUP. DHCP answers only this host's own NICs (static entries, no dynamic pool); DNS knows every
 * NIC of the network, local and remote, so a name resolves wherever its VM runs.
 */

/** Where one network's dnsmasq keeps its files (all inside the driver's state directory). */
export interface DnsmasqPaths {
  dhcpHosts: string
  dnsHosts: string
  pidFile: string
  logFile: string
}

function byAddress (a: { ip: string }, b: { ip: string }): number {
  const n = (ip: string): number => ip.split('.').reduce((acc, p) => acc * 256 + Number(p), 0)
  return n(a.ip) - n(b.ip)
}

/** `--dhcp-hostsfile`: `MAC,IP,hostname` per local NIC, sorted by address (stable text, so unchanged means no HUP). */
export function renderDhcpHosts (ports: readonly PortConfig[]): string {
  return [...ports].sort(byAddress).map((p) => `${p.mac},${p.ip},${p.hostname}\n`).join('')
}

/**
 * `--addn-hosts`: `IP hostname` for every NIC of the network, local first. A name held by two NICs
 * (a VM with two NICs on one network) resolves to both addresses.
 */
export function renderDnsHosts (ports: readonly PortConfig[], remote: readonly RemoteNic[]): string {
  const seen = new Set<string>()
  const lines: string[] = []
  for (const n of [...[...ports].sort(byAddress), ...[...remote].sort(byAddress)]) {
    const line = `${n.ip} ${n.hostname}\n`
    if (!seen.has(line)) lines.push(line)
    seen.add(line)
  }
  return lines.join('')
}

/**
 * dnsmasq's argv for one network: bound to the bridge only, no upstream resolver (it answers
 * every query itself), no lease file
 * (addresses are claimed by the cluster, not leased), DHCP only for MACs in the hosts file.
 * Without NAT no router is offered (`--dhcp-option=3`, empty, stops dnsmasq offering itself).
 */
export function dnsmasqArgs (net: NetworkConfig, bridge: string, paths: DnsmasqPaths): string[] {
  const subnet = parseSubnet(net.subnet)
  const args = [
    '--conf-file=/dev/null',
    '--no-resolv',
    // Answer every query from local data (NXDOMAIN, or no data for AAAA); without it, a name's AAAA query is REFUSED for want of an upstream.
    '--local=/#/',
    '--no-hosts',
    '--bind-interfaces',
    `--interface=${bridge}`,
    '--except-interface=lo',
    `--pid-file=${paths.pidFile}`,
    `--addn-hosts=${paths.dnsHosts}`,
    `--log-facility=${paths.logFile}`
  ]
  if (net.dhcp) {
    args.push(
      `--dhcp-range=${formatAddress(subnet.network)},static,${netmask(subnet)}`,
      `--dhcp-hostsfile=${paths.dhcpHosts}`,
      '--dhcp-authoritative',
      '--leasefile-ro',
      net.nat ? `--dhcp-option=option:router,${net.gateway}` : '--dhcp-option=3',
      `--dhcp-option=option:dns-server,${net.gateway}`,
      `--dhcp-option=option:mtu,${net.mtu}`
    )
  }
  return args
}
