import { createServer } from 'node:net'
import { describe, expect, it } from 'vitest'
import { directEndpoint, ipAndPort, isOwnHost, parseVia, reachable, throughputMBs } from '../src/migrate/direct-path.js'

describe('the direct migration path (pure parts)', () => {
  it('reads --via', () => {
    expect(parseVia(undefined)).toBe('auto')
    expect(parseVia('')).toBe('auto')
    expect(parseVia('auto')).toBe('auto')
    expect(parseVia('direct')).toBe('direct')
    expect(parseVia('mesh')).toBe('mesh')
    expect(() => parseVia('tcp')).toThrow(/direct, mesh or auto/)
  })

  it.each([
    ['/ip4/10.0.0.2/tcp/7946/p2p/12D3KooWabc', { host: '10.0.0.2', port: 7946 }],
    ['/ip6/fd00::2/tcp/7946', { host: 'fd00::2', port: 7946 }],
    ['/ip4/10.0.0.2/udp/7946/quic-v1', undefined],
    ['/dns4/host-2.example/tcp/7946', undefined]
  ])('ipAndPort(%s)', (addr, expected) => {
    expect(ipAndPort(addr)).toEqual(expected)
  })

  it.each([
    { what: 'a LAN address over loopback', dst: ['/ip4/127.0.0.1/tcp/4001', '/ip4/10.0.0.2/tcp/4001'], src: ['/ip4/10.0.0.1/tcp/4001'], expected: { host: '10.0.0.2', port: 4001 } },
    { what: 'loopback when the source is on loopback too (one machine)', dst: ['/ip4/127.0.0.1/tcp/4002'], src: ['/ip4/127.0.0.1/tcp/4001'], expected: { host: '127.0.0.1', port: 4002 } },
    { what: 'never another machine\'s loopback', dst: ['/ip4/127.0.0.1/tcp/4002'], src: ['/ip4/10.0.0.1/tcp/4001'], expected: undefined },
    { what: 'never a wildcard', dst: ['/ip4/0.0.0.0/tcp/4002', '/ip6/::/tcp/4002'], src: ['/ip4/127.0.0.1/tcp/4001'], expected: undefined },
    { what: 'nothing advertised', dst: [], src: ['/ip4/10.0.0.1/tcp/4001'], expected: undefined }
  ])('directEndpoint: $what', ({ dst, src, expected }) => {
    expect(directEndpoint(dst, src)).toEqual(expected)
  })

  it('listens only on its own addresses', () => {
    const own = ['/ip4/127.0.0.1/tcp/4001', '/ip4/10.0.0.2/tcp/4001']
    expect(isOwnHost('10.0.0.2', own)).toBe(true)
    expect(isOwnHost('10.0.0.3', own)).toBe(false)
    expect(isOwnHost('0.0.0.0', own)).toBe(false)
  })

  it('MB/s of the RAM phase', () => {
    expect(throughputMBs(300_000_000, 1000)).toBe(300)
    expect(throughputMBs(123_456_789, 0)).toBe(0)
  })

  it('reachable: a listening port yes, a closed one no, within the bound', async () => {
    const server = createServer((s) => s.destroy())
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    expect(await reachable('127.0.0.1', port, 1000)).toBe(true)
    await new Promise<void>((resolve) => server.close(() => { resolve() }))
    expect(await reachable('127.0.0.1', port, 1000)).toBe(false)
  })
})
