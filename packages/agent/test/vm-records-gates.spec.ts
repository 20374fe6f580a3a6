import type { ClusterView, HostEntry } from '@meshvirt/mesh'
import { pb } from '@meshvirt/proto'
import { describe, expect, it } from 'vitest'
import { createLogger } from '../src/log/logger.js'
import { VmRecords } from '../src/records/vm-records.js'
import { StateStore, type VmRow } from '../src/store/state-store.js'
import { VmRecordStore } from '../src/store/vm-record-store.js'

const vm = { id: 'vm-1', name: 'web', epoch: 3, state: 'crashed' } as unknown as VmRow

/** A host in the view: this one, or a live peer whose advert lists `owns` as its own VMs. */
const host = (hostId: string, self: boolean, owns: Array<{ id: string, epoch: number }> = []): HostEntry =>
  ({ hostId, self, liveness: 'alive', advert: { vms: owns.map((v) => ({ ...v, role: 'owner' })) } }) as unknown as HostEntry

/** VmRecords over an in-memory store, a fixed view and peers that count what they are asked. */
function records (peerOwns: Array<{ id: string, epoch: number }> = []): { records: VmRecords, asked: string[], relinquished: string[] } {
  const asked: string[] = []
  const relinquished: string[] = []
  const hosts = [host('self', true), host('peer-a', false, peerOwns), host('peer-b', false)]
  const view = { hosts: () => hosts, get: (id: string) => hosts.find((h) => h.hostId === id), subscribe: () => () => {} } as unknown as ClusterView
  const r = new VmRecords({
    selfId: 'self',
    store: new VmRecordStore(new StateStore(':memory:')),
    view,
    peers: {
      control: async (hostId: string) => { asked.push(hostId); return pb.ControlResponse.create({}) },
      negotiate: async () => { throw new Error('not in this test') }
    },
    vms: { get: () => vm, delete: async () => {}, relinquish: async (id: string) => { relinquished.push(id) } },
    releaseName: () => {},
    expectPeers: false,
    log: createLogger({ level: 'error' })
  })
  return { records: r, asked, relinquished }
}

describe('VM records: may a stopped guest start?', () => {
  it('at recovery, asks every live host whether it owns the VM', async () => {
    const { records: r, asked } = records()
    expect(await r.recoveryGate(vm)).toBe(true)
    expect(asked.sort()).toEqual(['peer-a', 'peer-b'])
  })

  it('after a crash while the agent ran, asks no host: a restart waits on nobody', async () => {
    const { records: r, asked } = records()
    expect(await r.restartGate(vm)).toBe(true)
    expect(asked).toEqual([])
  })

  it('either way, a live host that gossips the VM as its own at this epoch or later wins: this copy gives way', async () => {
    for (const gate of ['recoveryGate', 'restartGate'] as const) {
      const { records: r, asked, relinquished } = records([{ id: 'vm-1', epoch: 3 }])
      expect(await r[gate](vm)).toBe(false)
      expect(relinquished).toEqual(['vm-1'])
      expect(asked).toEqual([])
    }
  })
})
