import { describe, expect, it } from 'vitest'
import { parseSubnet, parseAddress, formatAddress } from '@meshvirt/network'
import type { VmSummary } from '@meshvirt/mesh'
import { peersFor, type ForwardingHost } from '../src/network/forwarding.js'
import { addressCandidates } from '../src/network/nic-addresses.js'
import { preferred, type NetworkRecord } from '../src/network/network-record.js'
import { parseCreateNetwork } from '../src/network/network-request.js'

const net = (over: Partial<NetworkRecord>): NetworkRecord => ({
  name: 'front', id: 'n1', vni: 7, subnet: '10.10.0.0/24', gateway: '10.10.0.1', mtu: 1450, nat: false, dhcp: true, createdAtMs: 1000, deletedAtMs: 0, ...over
})

describe('which record of a network name every host keeps', () => {
  it.each([
    ['same network: its deletion wins', net({}), net({ deletedAtMs: 5000 }), 'n1@5000'],
    ['two creations raced: the first created wins', net({ id: 'n2', createdAtMs: 2000 }), net({ id: 'n1', createdAtMs: 1000 }), 'n1@0'],
    ['two creations at the same ms: the smaller id wins', net({ id: 'nb' }), net({ id: 'na' }), 'na@0'],
    ['a name reused after a deletion: the new network wins', net({ id: 'n1', deletedAtMs: 3000 }), net({ id: 'n2', createdAtMs: 4000 }), 'n2@0'],
    ['a creation older than another\'s deletion loses to that tombstone', net({ id: 'n1', deletedAtMs: 3000 }), net({ id: 'n2', createdAtMs: 2000 }), 'n1@3000'],
    ['two tombstones: the later deletion', net({ id: 'n1', deletedAtMs: 3000 }), net({ id: 'n2', deletedAtMs: 4000 }), 'n2@4000']
  ])('%s', (_, a, b, expected) => {
    const tag = (r: NetworkRecord): string => `${r.id}@${r.deletedAtMs}`
    expect(tag(preferred(a, b))).toBe(expected)
    // Whatever order a host heard them in.
    expect(tag(preferred(b, a))).toBe(expected)
  })
})

describe('net create, validated at the edge', () => {
  it('fills in the gateway and the MTU (underlay − 50)', () => {
    expect(parseCreateNetwork({ name: 'front', subnet: '10.10.0.0/24' }, [])).toEqual({ name: 'front', subnet: '10.10.0.0/24', gateway: '10.10.0.1', mtu: 1450, nat: false, dhcp: true })
    expect(parseCreateNetwork({ name: 'j', subnet: '10.9.0.0/16', gateway: '10.9.255.254', nat: true, noDhcp: true }, [], 9000).mtu).toBe(8950)
  })

  it.each([
    [{ name: 'Front', subnet: '10.0.0.0/24' }, '--name'],
    [{ name: 'front', subnet: '10.0.0.1/24' }, '--subnet: \'10.0.0.1/24\' has host bits set'],
    [{ name: 'front', subnet: 'ten' }, '--subnet'],
    [{ name: 'front', subnet: '10.0.0.0/24', gateway: '10.0.1.1' }, '--gateway: 10.0.1.1 is not a host address of 10.0.0.0/24'],
    [{ name: 'front', subnet: '10.0.0.0/24', gateway: '10.0.0.255' }, '--gateway'],
    [{ name: 'front', subnet: '10.0.0.0/24', mtu: 100 }, '--mtu'],
    [{ name: 'front', subnet: '10.10.0.128/25' }, '--subnet: 10.10.0.128/25 overlaps network other (10.10.0.0/24)']
  ])('refuses %j (%s)', (req, message) => {
    expect(() => parseCreateNetwork(req, [net({ name: 'other' })])).toThrow(message)
  })

  it('a deleted network\'s subnet is free again', () => {
    expect(parseCreateNetwork({ name: 'front', subnet: '10.10.0.0/24' }, [net({ name: 'other', deletedAtMs: 5 })]).subnet).toBe('10.10.0.0/24')
  })
})

describe('address candidates', () => {
  it('start where the seed says, wrap, and skip what is used', () => {
    const s = parseSubnet('10.0.0.0/29') // hosts .1 … .6
    const used = new Set([parseAddress('10.0.0.1'), parseAddress('10.0.0.4')])
    expect([...addressCandidates(s, used, 2)].map(formatAddress)).toEqual(['10.0.0.3', '10.0.0.5', '10.0.0.6', '10.0.0.2'])
  })

  it('a full subnet has none', () => {
    const s = parseSubnet('10.0.0.0/30')
    expect([...addressCandidates(s, new Set([parseAddress('10.0.0.1'), parseAddress('10.0.0.2')]), 0)]).toEqual([])
  })
})

describe('forwarding programmed from gossip', () => {
  const vm = (id: string, epoch: number, nics: VmSummary['nics'], role: VmSummary['role'] = 'owner'): VmSummary => ({
    id, name: id, epoch, role, state: 'running', resources: { vcpus: 1, memoryBytes: 1, diskBytes: 0 }, owner: '', group: '', nics
  })
  const host = (hostId: string, underlay: string, vms: VmSummary[], liveness = 'alive', self = false): ForwardingHost => ({ hostId, self, liveness, advert: { underlay, vms, hostname: hostId } })
  const nic = (network: string, mac: string, ip: string): VmSummary['nics'][number] => ({ network, mac, ip })

  it('one entry per remote NIC of the network (a dead host\'s too), flooding only to hosts with ports on it', () => {
    const peers = peersFor('front', [
      host('self', '10.0.0.1', [vm('a', 1, [nic('front', '02:00:00:00:00:0a', '10.10.0.10')])], 'alive', true),
      host('h2', '10.0.0.2', [vm('b', 1, [nic('front', '02:00:00:00:00:0b', '10.10.0.11'), nic('back', '02:00:00:00:01:0b', '10.20.0.11')])]),
      host('h3', '10.0.0.3', [vm('c', 1, [nic('back', '02:00:00:00:00:0c', '10.20.0.12')])]),
      host('h4', '10.0.0.4', [vm('d', 1, [nic('front', '02:00:00:00:00:0d', '10.10.0.13')])], 'dead'),
      host('h5', '10.0.0.5', [vm('e', 1, [nic('front', '02:00:00:00:00:0e', '10.10.0.14')], 'replica')])
    ], new Map([['a', 1]]))
    expect(peers).toEqual({
      floodTo: ['10.0.0.2', '10.0.0.4'],
      nics: [{ mac: '02:00:00:00:00:0b', ip: '10.10.0.11', hostname: 'b', underlay: '10.0.0.2' }, { mac: '02:00:00:00:00:0d', ip: '10.10.0.13', hostname: 'd', underlay: '10.0.0.4' }]
    })
  })

  it('a VM two hosts list during a hand-over is forwarded to the newer epoch; one this host runs is not forwarded away', () => {
    const moving = [nic('front', '02:00:00:00:00:0b', '10.10.0.11')]
    const hosts = [host('h2', '10.0.0.2', [vm('b', 3, moving)]), host('h3', '10.0.0.3', [vm('b', 4, moving)])]
    expect(peersFor('front', hosts, new Map()).nics.map((n) => n.underlay)).toEqual(['10.0.0.3'])
    expect(peersFor('front', hosts, new Map([['b', 4]])).nics).toEqual([])
    expect(peersFor('front', hosts, new Map([['b', 3]])).nics.map((n) => n.underlay)).toEqual(['10.0.0.3'])
  })
})
