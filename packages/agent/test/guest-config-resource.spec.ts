import { describe, expect, it } from 'vitest'
import type { VmSpec as DriverSpec } from '@meshvirt/hypervisor'
import { guestConfigResource } from '../src/guest/guest-config-resource.js'
import type { NetworkRecord } from '../src/network/network-record.js'
import { vmSpecFromWire } from '../src/vm/vm-spec-codec.js'

const net: NetworkRecord = { name: 'lan', id: 'n1', vni: 7, subnet: '10.8.0.0/24', gateway: '10.8.0.1', mtu: 1450, nat: false, dhcp: false, createdAtMs: 1, deletedAtMs: 0 }
const driver: DriverSpec = { id: 'vm-1', vcpus: 1, memoryMiB: 128, boot: { kind: 'kernel', kernel: '/k' } }
const resource = guestConfigResource((name) => (name === 'lan' ? net : undefined))
const origins = [{ kind: 'create' as const }, { kind: 'incoming' as const }, { kind: 'promotion' as const, replicaDisk: '/r' }]

describe('guestConfigResource', () => {
  it('leaves a VM without guest config without a seed (its device set unchanged)', async () => {
    expect(await resource.prepare({ id: 'vm-1', spec: vmSpecFromWire({ name: 'web' }), origin: { kind: 'create' } }, driver)).toEqual(driver)
  })

  it('gives every origin the same seed, with the NIC from the network record', async () => {
    const spec = vmSpecFromWire({ name: 'web', guest: { hostname: 'web1' }, nics: [{ network: 'lan', ip: '10.8.0.5', mac: '52:54:00:00:00:01' }] })
    const seeds = await Promise.all(origins.map(async (origin) => (await resource.prepare({ id: 'vm-1', spec, origin }, driver)).seed))
    expect(seeds[1]).toEqual(seeds[0])
    expect(seeds[2]).toEqual(seeds[0])
    const files = Object.fromEntries((seeds[0]?.files ?? []).map((f) => [f.name, f.content]))
    expect(files['meta-data']).toBe('instance-id: "vm-1"\nlocal-hostname: "web1"\n')
    expect(files['network-config']).toContain('      - "10.8.0.5/24"\n')
    expect(files['network-config']).toContain('    gateway4: "10.8.0.1"\n    mtu: 1450\n')
  })

  it('refuses a NIC on a network unknown here rather than write a seed that differs from other hosts\'', async () => {
    const spec = vmSpecFromWire({ name: 'web', guest: { hostname: 'web1' }, nics: [{ network: 'gone', ip: '10.9.0.5', mac: '52:54:00:00:00:02' }] })
    await expect(async () => await resource.prepare({ id: 'vm-1', spec, origin: { kind: 'incoming' } }, driver)).rejects.toThrow(/network gone is not known on this host/)
  })
})
