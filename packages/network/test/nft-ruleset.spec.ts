import { describe, expect, it } from 'vitest'
import { renderRuleset } from '@meshvirt/network'

const web = { bridge: 'mvbr7', subnet: '10.7.0.0/24', gateway: '10.7.0.1', nat: true }
const db = { bridge: 'mvbr8', subnet: '10.8.0.0/24', gateway: '10.8.0.1', nat: false }

describe('the nftables table', () => {
  it('with no networks only deletes the tables', () => {
    expect(renderRuleset([])).toBe('table inet meshvirt\ndelete table inet meshvirt\ntable bridge meshvirt\ndelete table bridge meshvirt\n')
  })

  it('DHCP neither enters nor leaves a tunnel (each host answers its own guests alone)', () => {
    const text = renderRuleset([web, db])
    expect(text).toContain('table bridge meshvirt {\n')
    expect(text).toContain('chain dhcp_forward {\n    type filter hook forward priority filter; policy accept;\n    iifname "mvvx*" udp dport { 67, 68 } drop\n    oifname "mvvx*" udp dport { 67, 68 } drop\n  }')
    expect(text).toContain('chain dhcp_input {\n    type filter hook input priority filter; policy accept;\n    iifname "mvvx*" udp dport { 67, 68 } drop\n  }')
    expect(text).toContain('chain dhcp_output {\n    type filter hook output priority filter; policy accept;\n    oifname "mvvx*" udp dport { 67, 68 } drop\n  }')
  })

  it.each<[string, Parameters<typeof renderRuleset>[1], string[], string[]]>([
    ['NAT to the uplink', { uplink: 'eth0' }, [
      'iifname "mvbr7" ip saddr 10.7.0.0/24 oifname "eth0" accept',
      'ip saddr 10.7.0.0/24 ip daddr != 10.7.0.0/24 oifname "eth0" masquerade'
    ], ['10.8.0.0/24 oifname']],
    ['no uplink known: out through anything but a meshvirt bridge', {}, [
      'iifname "mvbr7" ip saddr 10.7.0.0/24 oifname != "mvbr*" accept'
    ], []]
  ])('%s', (_, options, present, absent) => {
    const text = renderRuleset([db, web], options)
    expect(text.startsWith('table inet meshvirt\ndelete table inet meshvirt\ntable bridge meshvirt\ndelete table bridge meshvirt\ntable inet meshvirt {\n')).toBe(true)
    const common = [
      'iifname "mvbr7" udp dport 67 accept',
      'iifname "mvbr8" ip daddr 10.8.0.1 udp dport 53 accept',
      'iifname "mvbr8" ip daddr 10.8.0.1 tcp dport 53 accept',
      'iifname "mvbr7" ip daddr 10.7.0.1 icmp type echo-request accept',
      'iifname "mvbr7" oifname "mvbr7" accept',
      'oifname "mvbr*" ct state established,related accept',
      'type nat hook postrouting priority srcnat; policy accept;'
    ]
    for (const line of [...common, ...present]) expect(text).toContain(`    ${line}\n`)
    for (const line of absent) expect(text).not.toContain(line)
  })

  it.each([
    ['with the underlay address', { underlay: '10.77.0.1' }, 'ip daddr 10.77.0.1 udp dport 4789 notrack', 'ip saddr 10.77.0.1 udp dport 4789 notrack'],
    ['without', {}, 'udp dport 4789 notrack', 'udp dport 4789 notrack']
  ])('VXLAN packets skip conntrack, %s', (_, options, inbound, outbound) => {
    const text = renderRuleset([web], options)
    expect(text).toContain(`chain tunnel_in {\n    type filter hook prerouting priority raw; policy accept;\n    ${inbound}\n  }`)
    expect(text).toContain(`chain tunnel_out {\n    type filter hook output priority raw; policy accept;\n    ${outbound}\n  }`)
  })

  it.each<[string, string[] | undefined, string | undefined]>([
    ['from the cluster\'s hosts only, once they are known', ['10.77.0.3', '10.77.0.2', '10.77.0.3'], 'ip daddr 10.77.0.1 udp dport 4789 ip saddr != { 10.77.0.2, 10.77.0.3 } drop'],
    ['from no one when the cluster is this host alone', [], 'ip daddr 10.77.0.1 udp dport 4789 drop'],
    ['from anywhere until the agent has heard the cluster', undefined, undefined]
  ])('VXLAN is accepted %s', (_, tunnelPeers, rule) => {
    const lines = renderRuleset([web], { underlay: '10.77.0.1', ...(tunnelPeers === undefined ? {} : { tunnelPeers }) }).split('\n').map((l) => l.trim())
    const tunnelIn = lines.indexOf('chain tunnel_in {')
    if (rule === undefined) {
      expect(lines.filter((l) => l.endsWith('drop') && l.includes('4789') && !l.startsWith('iifname'))).toEqual([])
    } else {
      // Dropped before the notrack rule, in the raw prerouting hook: before any VXLAN device sees it.
      expect(lines[tunnelIn + 2]).toBe(rule)
      expect(lines[tunnelIn + 3]).toBe('ip daddr 10.77.0.1 udp dport 4789 notrack')
    }
  })

  it('a guest\'s VXLAN packets never leave for another host, NAT or not (they would move MACs there)', () => {
    const lines = renderRuleset([web], { uplink: 'eth0' }).split('\n').map((l) => l.trim())
    const drop = lines.indexOf('iifname "mvbr*" udp dport 4789 drop')
    expect(drop).toBeGreaterThan(lines.indexOf('chain forward {'))
    expect(drop).toBeLessThan(lines.indexOf('iifname "mvbr7" ip saddr 10.7.0.0/24 oifname "eth0" accept'))
  })

  it('drops from any meshvirt bridge after the allowances (input and forward)', () => {
    const lines = renderRuleset([web], { uplink: 'eth0' }).split('\n').map((l) => l.trim())
    const input = lines.indexOf('chain input {')
    const forward = lines.indexOf('chain forward {')
    expect(lines.indexOf('iifname "mvbr*" drop', input)).toBeLessThan(forward)
    expect(lines.indexOf('iifname "mvbr*" drop', forward)).toBeGreaterThan(lines.indexOf('iifname "mvbr7" ip saddr 10.7.0.0/24 oifname "eth0" accept'))
  })
})
