import { describe, expect, it } from 'vitest'
import { AddressError, contains, defaultGateway, formatAddress, formatSubnet, hostRange, isHostAddress, netmask, overlaps, parseAddress, parseSubnet } from '@meshvirt/network'

describe('subnets', () => {
  it.each([
    ['10.10.0.0/24', '10.10.0.1', '10.10.0.254', 254, '255.255.255.0'],
    ['192.168.4.0/30', '192.168.4.1', '192.168.4.2', 2, '255.255.255.252'],
    ['10.0.0.0/8', '10.0.0.1', '10.255.255.254', 16_777_214, '255.0.0.0']
  ])('%s: hosts %s … %s (%i), mask %s', (text, first, last, count, mask) => {
    const s = parseSubnet(text)
    expect(formatSubnet(s)).toBe(text)
    const r = hostRange(s)
    expect([formatAddress(r.first), formatAddress(r.last), r.count]).toEqual([first, last, count])
    expect(netmask(s)).toBe(mask)
    expect(formatAddress(defaultGateway(s))).toBe(first)
  })

  it.each([
    ['10.10.0.0', 'not a CIDR subnet'],
    ['10.10.0.0/33', 'prefix must be'],
    ['10.10.0.0/31', 'prefix must be'],
    ['10.10.0.0/4', 'prefix must be'],
    ['10.10.0.5/24', 'did you mean 10.10.0.0/24'],
    ['10.10.0.256/24', 'not an IPv4 address'],
    ['10.10.00.0/24', 'not an IPv4 address'],
    ['a.b.c.d/24', 'not an IPv4 address']
  ])('refuses %s (%s)', (text, message) => {
    expect(() => parseSubnet(text)).toThrow(AddressError)
    expect(() => parseSubnet(text)).toThrow(message)
  })

  it.each([
    ['10.0.0.0/24', '10.0.0.0/24', true],
    ['10.0.0.0/24', '10.0.1.0/24', false],
    ['10.0.0.0/16', '10.0.200.0/24', true],
    ['10.0.200.0/24', '10.0.0.0/16', true],
    ['10.0.0.0/25', '10.0.0.128/25', false]
  ])('%s overlaps %s: %s', (a, b, expected) => {
    expect(overlaps(parseSubnet(a), parseSubnet(b))).toBe(expected)
  })

  it.each([
    ['10.0.0.0', true, false],
    ['10.0.0.1', true, true],
    ['10.0.0.255', true, false],
    ['10.0.1.1', false, false]
  ])('in 10.0.0.0/24, %s: inside %s, a host address %s', (addr, inside, host) => {
    const s = parseSubnet('10.0.0.0/24')
    expect(contains(s, parseAddress(addr))).toBe(inside)
    expect(isHostAddress(s, parseAddress(addr))).toBe(host)
  })
})
