import { describe, expect, it } from 'vitest'
import { desiredFdb, desiredNeigh, diffEntries, fdbKey, neighKey, parseFdb, parseNeigh, sameFdb, sameNeigh } from '@meshvirt/network'
import type { FdbEntry, NeighEntry, NetworkPeers } from '@meshvirt/network'

const Z = '00:00:00:00:00:00'
const A = '02:00:00:00:00:0a'
const B = '02:00:00:00:00:0b'

describe('diffEntries', () => {
  const kv = (s: string): { k: string, v: string } => ({ k: s.split('=')[0] as string, v: s.split('=')[1] as string })
  it.each([
    ['both empty', [], [], [], []],
    ['adds what is missing', ['a=1', 'b=2'], ['a=1'], ['b=2'], []],
    ['removes what is stale', ['a=1'], ['a=1', 'c=3'], [], ['c=3']],
    ['replaces a changed value (no removal)', ['a=2'], ['a=1'], ['a=2'], []],
    ['removes extra copies of a key', ['a=1'], ['a=1', 'a=9'], [], ['a=9']],
    ['ignores later desired duplicates', ['a=1', 'a=2'], [], ['a=1'], []],
    ['nothing to do when equal', ['a=1', 'b=2'], ['b=2', 'a=1'], [], []]
  ])('%s', (_, desired, actual, add, remove) => {
    const d = diffEntries(desired.map(kv), actual.map(kv), (e) => e.k, (x, y) => x.v === y.v)
    expect(d.add).toEqual(add.map(kv))
    expect(d.remove).toEqual(remove.map(kv))
  })
})

describe('forwarding entries', () => {
  const flood = (dst: string): FdbEntry => ({ mac: Z, dst, permanent: true })
  const nic = (mac: string, dst: string): FdbEntry => ({ mac, dst, permanent: false })
  const peers: NetworkPeers = {
    floodTo: ['10.77.0.3', '10.77.0.2', '10.77.0.3'],
    nics: [{ mac: A.toUpperCase(), ip: '10.7.0.10', hostname: 'www', underlay: '10.77.0.2' }, { mac: B, ip: '10.7.0.11', hostname: 'db', underlay: '10.77.0.3' }]
  }

  it('one permanent flood entry per remote host, one dynamic unicast entry per remote NIC (MACs lower-cased)', () => {
    expect(desiredFdb(peers)).toEqual([
      { mac: Z, dst: '10.77.0.2', permanent: true }, { mac: Z, dst: '10.77.0.3', permanent: true },
      { mac: A, dst: '10.77.0.2', permanent: false }, { mac: B, dst: '10.77.0.3', permanent: false }
    ])
    expect(desiredNeigh(peers)).toEqual([{ ip: '10.7.0.10', mac: A, permanent: true }, { ip: '10.7.0.11', mac: B, permanent: true }])
  })

  it.each<[string, FdbEntry[], FdbEntry[], FdbEntry[], FdbEntry[]]>([
    ['a new host gets a flood entry, the old keeps its own', [flood('1.1.1.1'), flood('2.2.2.2')], [flood('1.1.1.1')], [flood('2.2.2.2')], []],
    ['a host gone loses its flood entry', [], [flood('1.1.1.1')], [], [flood('1.1.1.1')]],
    ['a moved MAC is replaced in place', [nic(A, '2.2.2.2')], [nic(A, '1.1.1.1')], [nic(A, '2.2.2.2')], []],
    ['a MAC learning already moved is left as it is', [nic(A, '2.2.2.2')], [nic(A, '2.2.2.2')], [], []],
    ['a NIC gone is removed', [], [nic(A, '1.1.1.1')], [], [nic(A, '1.1.1.1')]],
    ['a unicast entry made permanent (before learning was on) is made dynamic, so learning can move it', [nic(A, '1.1.1.1')], [{ ...nic(A, '1.1.1.1'), permanent: true }], [nic(A, '1.1.1.1')], []]
  ])('fdb: %s', (_, desired, actual, add, remove) => {
    expect(diffEntries(desired, actual, fdbKey, sameFdb)).toEqual({ add, remove })
  })

  it.each<[string, NeighEntry[], NeighEntry[], NeighEntry[], NeighEntry[]]>([
    ['a new address', [{ ip: '10.7.0.10', mac: A, permanent: true }], [], [{ ip: '10.7.0.10', mac: A, permanent: true }], []],
    ['an address now on another MAC', [{ ip: '10.7.0.10', mac: B, permanent: true }], [{ ip: '10.7.0.10', mac: A, permanent: true }], [{ ip: '10.7.0.10', mac: B, permanent: true }], []],
    ['a kernel-learned entry becomes permanent', [{ ip: '10.7.0.10', mac: A, permanent: true }], [{ ip: '10.7.0.10', mac: A, permanent: false }], [{ ip: '10.7.0.10', mac: A, permanent: true }], []],
    ['a stale address goes', [], [{ ip: '10.7.0.10', mac: A, permanent: true }], [], [{ ip: '10.7.0.10', mac: A, permanent: true }]]
  ])('neigh: %s', (_, desired, actual, add, remove) => {
    expect(diffEntries(desired, actual, neighKey, sameNeigh)).toEqual({ add, remove })
  })
})

describe('parsing iproute2 JSON', () => {
  it('bridge -j fdb show: keeps the device\'s remote entries, skips the bridge\'s', () => {
    const text = '[{"mac":"7e:5a:8c:84:59:4a","flags":[],"master":"mvbr9","state":"permanent"},{"mac":"02:11:22:33:44:55","dst":"10.99.0.2","flags":["self"],"state":""},' +
      '{"mac":"02:11:22:33:44:66","dst":"10.99.0.3","flags":["self"],"state":"permanent"},' +
      '{"mac":"00:00:00:00:00:00","dst":"10.99.0.2","flags":["self"],"state":"permanent"},{"mac":"00:00:00:00:00:00","dst":"10.99.0.3","flags":["self"],"state":"permanent"}]\n'
    expect(parseFdb(text)).toEqual([
      { mac: '02:11:22:33:44:55', dst: '10.99.0.2', permanent: false }, { mac: '02:11:22:33:44:66', dst: '10.99.0.3', permanent: true },
      { mac: Z, dst: '10.99.0.2', permanent: true }, { mac: Z, dst: '10.99.0.3', permanent: true }
    ])
  })

  it.each([
    ['permanent', '[{"dst":"10.5.0.7","lladdr":"02:11:22:33:44:55","state":["PERMANENT"]}]', [{ ip: '10.5.0.7', mac: '02:11:22:33:44:55', permanent: true }]],
    ['learned', '[{"dst":"10.5.0.7","lladdr":"02:11:22:33:44:55","state":["STALE"]}]', [{ ip: '10.5.0.7', mac: '02:11:22:33:44:55', permanent: false }]],
    ['incomplete (no lladdr)', '[{"dst":"10.5.0.7","state":["FAILED"]}]', []],
    ['IPv6', '[{"dst":"fe80::1","lladdr":"02:11:22:33:44:55","state":["REACHABLE"]}]', []],
    ['empty output', '', []]
  ])('ip -j neigh show: %s', (_, text, entries) => {
    expect(parseNeigh(text)).toEqual(entries)
  })
})
