import { pb } from '@meshvirt/proto'
import { describe, expect, it } from 'vitest'
import { decodeHostAdvert, emptyAdvertContent, encodeHostAdvert, hostAdvertToWire, type HostAdvert } from '../src/index.js'
import { capacity } from './helpers.js'

const HOST = '12D3KooWPykuFy7j1F8TZbc4ggch9hVVehbYaZTvXvWaBRVKbe8c'

function advert (over: Partial<HostAdvert> = {}): HostAdvert {
  return {
    ...emptyAdvertContent(),
    hostId: HOST,
    incarnation: 1_700_000_000_000,
    seq: 3,
    addrs: ['/ip4/10.0.0.1/tcp/7400'],
    labels: { zone: 'a', rack: 'r1' },
    capacity: capacity(16, 4),
    accelerator: 'tcg',
    state: 'draining',
    vms: [{ id: 'vm-1', name: 'web', epoch: 2, role: 'owner', state: 'running', resources: { vcpus: 2, memoryBytes: 2 ** 31, diskBytes: 2 ** 34 }, owner: HOST, group: '', nics: [{ network: 'front', ip: '10.10.0.5', mac: '02:aa:bb:cc:dd:ee' }] }],
    sentAtMs: 1_700_000_000_123,
    heartbeatIntervalMs: 1000,
    ...over
  }
}

/** Encodes a wire advert with one field patched (bypassing our encoder's types). */
function wire (patch: Record<string, unknown>): Uint8Array {
  return pb.HostAdvert.encode({ ...hostAdvertToWire(advert()), ...patch }).finish()
}

describe('HostAdvert codec', () => {
  it('round-trips every field, with uint64 as numbers', () => {
    const a = advert({ capacity: capacity(16, 4), seq: 2 ** 40 })
    const decoded = decodeHostAdvert(encodeHostAdvert(a))
    expect(decoded).toEqual({ ok: true, advert: a })
  })

  it.each([
    ['random bytes', Uint8Array.from([0x0a, 0xff, 0xff, 0xff]), 'undecodable'],
    ['an empty message', new Uint8Array(0), 'invalid: host_id is empty'],
    ['a host id that is not a peer id', wire({ hostId: 'not a peer id!' }), 'invalid: host_id is not a base58 peer id'],
    ['incarnation 0', wire({ incarnation: 0 }), 'invalid: incarnation must be ≥ 1'],
    ['no capacity', wire({ capacity: null }), 'invalid: capacity is missing'],
    ['no overcommit', wire({ capacity: { ...capacity(1), overcommit: null } }), 'invalid: capacity.overcommit is missing'],
    ['an overcommit of 0', wire({ capacity: { ...capacity(1), overcommit: { cpu: 0, memory: 1, disk: 1 } } }), 'invalid: capacity.overcommit.cpu'],
    ['an overcommit of 1000', wire({ capacity: { ...capacity(1), overcommit: { cpu: 1000, memory: 1, disk: 1 } } }), 'invalid: capacity.overcommit.cpu'],
    ['an unknown accelerator', wire({ accelerator: 9 }), 'invalid: accelerator has unknown value 9'],
    ['an unknown host state', wire({ state: 42 }), 'invalid: state has unknown value 42'],
    ['an unknown vm state', wire({ vms: [{ id: 'x', state: 99 }] }), 'invalid: vms[0].state has unknown value 99'],
    ['a vm without id', wire({ vms: [{ name: 'x' }] }), 'invalid: vms[0].id is empty'],
    ['a bad address', wire({ addrs: ['/ip4/999.1.1.1/tcp/1'] }), 'invalid: addrs[0] is not a multiaddr'],
    ['too many addresses', wire({ addrs: Array.from({ length: 33 }, () => '/ip4/1.1.1.1/tcp/1') }), 'invalid: addrs has 33 entries'],
    ['a bad label key', wire({ labels: { 'bad key': 'x' } }), 'invalid: label key'],
    ['cpu utilization above 1', wire({ load: { cpuUtilization: 1.5 } }), 'invalid: load.cpu_utilization must be in 0..1'],
    ['a NaN load', wire({ load: { load1: Number.NaN } }), 'invalid: load.load1'],
    ['a zero heartbeat', wire({ heartbeatIntervalMs: 0 }), 'invalid: heartbeat_interval_ms'],
    ['a uint64 above 2^53', wire({ seq: 2 ** 60 }), 'invalid: seq'],
    ['an oversized message', new Uint8Array(300 * 1024), 'oversized']
  ])('refuses %s with a reason', (_name, bytes, reason) => {
    const decoded = decodeHostAdvert(bytes)
    expect(decoded.ok).toBe(false)
    if (!decoded.ok) expect(decoded.reason.startsWith(reason)).toBe(true)
  })

  it('carries the underlay address, the networks and their tombstones', () => {
    const front = { name: 'front', id: 'n1', vni: 7, subnet: '10.10.0.0/24', gateway: '10.10.0.1', mtu: 1450, nat: true, dhcp: true, createdAtMs: 1_700_000_000_000, deletedAtMs: 0 }
    const a = advert({ underlay: '10.200.0.1', networks: [front, { ...front, name: 'old', id: 'n0', nat: false, dhcp: false, deletedAtMs: 1_700_000_000_500 }] })
    expect(decodeHostAdvert(encodeHostAdvert(a))).toEqual({ ok: true, advert: a })
  })

  it('carries the balancing setting and each VM\'s measured usage and no-balance flag', () => {
    const vm = advert().vms[0]!
    const a = advert({
      balance: { mode: 'auto', version: 1_700_000_000_999, setBy: HOST },
      vms: [{ ...vm, usage: { cpuCores: 0.75, memoryBytes: 2 ** 30 }, noBalance: true }, { ...vm, id: 'vm-2' }]
    })
    expect(decodeHostAdvert(encodeHostAdvert(a))).toEqual({ ok: true, advert: a })
  })

  it('carries a VM\'s I/O rates when measured (an idle guest\'s zeros too), a replicated VM\'s lag, a host\'s rates', () => {
    const vm = advert().vms[0]!
    const a = advert({
      load: { load1: 0.5, cpuUtilization: 0.25, memoryUsedBytes: 2 ** 30, diskUsedBytes: 0, vmsRunning: 2, diskReadBps: 10, diskWriteBps: 20, netRxBps: 30, netTxBps: 40 },
      vms: [
        { ...vm, usage: { cpuCores: 0.1, memoryBytes: 2 ** 20, diskReadBps: 0, diskWriteBps: 0, netRxBps: 0, netTxBps: 0 }, replicaLagMs: 1500 },
        { ...vm, id: 'vm-2', usage: { cpuCores: 0.1, memoryBytes: 2 ** 20, diskReadBps: 5, diskWriteBps: 6, netRxBps: 7, netTxBps: 8 } },
        { ...vm, id: 'vm-3', usage: { cpuCores: 0.1, memoryBytes: 2 ** 20 } }
      ]
    })
    expect(decodeHostAdvert(encodeHostAdvert(a))).toEqual({ ok: true, advert: a })
  })

  it.each([
    ['an unknown balance mode', wire({ balance: { mode: 7 } }), 'invalid: balance.mode has unknown value 7'],
    ['a negative cpu usage', wire({ vms: [{ id: 'x', usageCpuCores: -1, usageMemoryBytes: 5 }] }), 'invalid: vms[0].usage_cpu_cores']
  ])('refuses %s with a reason', (_name, bytes, reason) => {
    const decoded = decodeHostAdvert(bytes)
    expect(decoded.ok).toBe(false)
    if (!decoded.ok) expect(decoded.reason.startsWith(reason)).toBe(true)
  })

  it('reads an unset balance mode as no setting', () => {
    const decoded = decodeHostAdvert(wire({ balance: { mode: 0, version: 5 } }))
    expect(decoded.ok && decoded.advert.balance).toBeUndefined()
  })

  it('reads absent (zero) uint64 fields as 0', () => {
    const a = advert({ seq: 0, sentAtMs: 0, vms: [{ id: 'vm', name: '', epoch: 0, role: 'unspecified', state: 'unspecified', resources: { vcpus: 0, memoryBytes: 0, diskBytes: 0 }, owner: '', group: '', nics: [] }] })
    expect(decodeHostAdvert(encodeHostAdvert(a))).toEqual({ ok: true, advert: a })
  })

  it('never throws on random input', () => {
    for (let i = 0; i < 2000; i++) {
      const bytes = Uint8Array.from({ length: Math.floor(Math.random() * 200) }, () => Math.floor(Math.random() * 256))
      expect(() => decodeHostAdvert(bytes)).not.toThrow()
    }
  })
})
