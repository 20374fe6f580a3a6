import { describe, expect, it } from 'vitest'
import { bridgeName, gatewayMac, nicMac, tapName, vxlanName, MAX_VNI } from '@meshvirt/network'

describe('names and MACs derived from identities', () => {
  it('a NIC has the same locally administered unicast MAC everywhere, different per index and VM', () => {
    const mac = nicMac('0b1c2d3e-web', 0)
    expect(mac).toMatch(/^02(:[0-9a-f]{2}){5}$/)
    expect(nicMac('0b1c2d3e-web', 0)).toBe(mac)
    expect(nicMac('0b1c2d3e-web', 1)).not.toBe(mac)
    expect(nicMac('0b1c2d3e-db', 0)).not.toBe(mac)
  })

  it('the gateway MAC follows the VXLAN id and never looks like a NIC MAC', () => {
    expect(gatewayMac(1)).toBe('06:00:00:00:00:01')
    expect(gatewayMac(MAX_VNI)).toBe('06:00:00:ff:ff:ff')
  })

  it.each([1, 4242, MAX_VNI])('devices of VXLAN id %i fit in 15 characters', (vni) => {
    expect(bridgeName(vni).length).toBeLessThanOrEqual(15)
    expect(vxlanName(vni).length).toBeLessThanOrEqual(15)
  })

  it('a tap name fits in 15 characters and is stable', () => {
    const name = tapName('a-very-long-vm-identifier-0123456789', 3)
    expect(name.length).toBeLessThanOrEqual(15)
    expect(name).toBe(tapName('a-very-long-vm-identifier-0123456789', 3))
    expect(name.startsWith('mv')).toBe(true)
  })
})
