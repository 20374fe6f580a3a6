import { describe, expect, it } from 'vitest'
import { dnsmasqArgs, renderDhcpHosts, renderDnsHosts } from '@meshvirt/network'
import type { NetworkConfig, PortConfig } from '@meshvirt/network'

const net: NetworkConfig = { name: 'web', vni: 7, subnet: '10.7.0.0/24', gateway: '10.7.0.1', mtu: 1450, nat: true, dhcp: true }
const port = (ip: string, hostname: string, mac: string): PortConfig => ({ network: 'web', vmId: hostname, nicIndex: 0, mac, ip, hostname })
const paths = { dhcpHosts: '/s/web/dhcp-hosts', dnsHosts: '/s/web/dns-hosts', pidFile: '/s/web/dnsmasq.pid', logFile: '/s/web/dnsmasq.log' }

describe('dnsmasq files', () => {
  it('dhcp-hostsfile: MAC,IP,hostname per local NIC, by address', () => {
    expect(renderDhcpHosts([port('10.7.0.20', 'db', '02:00:00:00:00:02'), port('10.7.0.3', 'www', '02:00:00:00:00:01')]))
      .toBe('02:00:00:00:00:01,10.7.0.3,www\n02:00:00:00:00:02,10.7.0.20,db\n')
    expect(renderDhcpHosts([])).toBe('')
  })

  it('addn-hosts: every NIC of the network, local then remote, no duplicate lines', () => {
    const remote = [{ mac: '02:00:00:00:00:09', ip: '10.7.0.9', hostname: 'cache', underlay: '10.77.0.2' }, { mac: '02:00:00:00:00:09', ip: '10.7.0.9', hostname: 'cache', underlay: '10.77.0.2' }]
    expect(renderDnsHosts([port('10.7.0.3', 'www', '02:00:00:00:00:01')], remote)).toBe('10.7.0.3 www\n10.7.0.9 cache\n')
  })
})

describe('dnsmasq argv', () => {
  it.each<[string, Partial<NetworkConfig>, string[], string[]]>([
    ['NAT: router offered', {}, ['--dhcp-option=option:router,10.7.0.1', '--dhcp-range=10.7.0.0,static,255.255.255.0', '--dhcp-option=option:mtu,1450'], ['--dhcp-option=3']],
    ['no NAT: an empty router option', { nat: false }, ['--dhcp-option=3', '--dhcp-option=option:dns-server,10.7.0.1'], ['--dhcp-option=option:router,10.7.0.1']],
    ['no DHCP: DNS only', { dhcp: false }, ['--addn-hosts=/s/web/dns-hosts', '--interface=mvbr7'], ['--dhcp-range=10.7.0.0,static,255.255.255.0', '--dhcp-hostsfile=/s/web/dhcp-hosts']]
  ])('%s', (_, change, present, absent) => {
    const args = dnsmasqArgs({ ...net, ...change }, 'mvbr7', paths)
    for (const a of ['--bind-interfaces', '--except-interface=lo', '--no-resolv', '--local=/#/', '--no-hosts', '--conf-file=/dev/null', '--pid-file=/s/web/dnsmasq.pid', ...present]) expect(args).toContain(a)
    for (const a of absent) expect(args).not.toContain(a)
  })
})
