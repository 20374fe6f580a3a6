import { describe, expect, it } from 'vitest'
import type { ClusterView, ClusterViewEvent, HostEntry } from '@meshvirt/mesh'
import type { meshvirt } from '@meshvirt/proto'
import { VmRecords, type VmRecordsDeps } from '../src/records/vm-records.js'
import type { VmRecordStore, VmTombstone } from '../src/store/vm-record-store.js'
import { createLogger } from '../src/log/logger.js'

/**
 * A host that restarted may have been dead at this one when a VM was force-deleted here (so it was
 * not told), and it pulled from this host before the tombstone existed: when it comes back, this
 * host hands it the tombstones it keeps, not only asks for its own.
 */
describe('tombstones when a host joins or comes back', () => {
  it('are sent to it as well as asked of it', async () => {
    const tomb: VmTombstone = { vmId: 'vm-1', name: 'keep-me', owner: 'h2', epoch: 1, deletedAt: Date.now() }
    const sent: Array<{ host: string, add: meshvirt.v1.IVmTombstone[] }> = []
    let listener: ((e: ClusterViewEvent) => void) | undefined
    const view = {
      hosts: () => [],
      get: () => undefined,
      subscribe: (l: (e: ClusterViewEvent) => void) => { listener = l; return () => {} }
    } as unknown as ClusterView
    const store = {
      listKnown: () => [],
      tombstones: () => [tomb],
      putTombstone: () => {},
      putKnown: () => {},
      deleteKnown: () => {},
      transactionally: (fn: () => void) => { fn() }
    } as unknown as VmRecordStore
    const deps: VmRecordsDeps = {
      selfId: 'h1',
      store,
      view,
      peers: {
        control: async (host: string, req: meshvirt.v1.IControlRequest) => {
          sent.push({ host, add: req.syncTombstones?.add ?? [] })
          return { tombstoneList: { tombstones: [] } }
        },
        negotiate: async () => ({})
      } as unknown as VmRecordsDeps['peers'],
      vms: { get: () => undefined, delete: async () => {}, relinquish: async () => undefined },
      releaseName: () => {},
      expectPeers: false,
      log: createLogger({ level: 'error' })
    }
    const records = new VmRecords(deps)
    records.start()
    const h0 = { hostId: 'h0', self: false, liveness: 'alive', advert: { hostname: 'h0', vms: [] } } as unknown as HostEntry
    listener?.({ type: 'alive', host: h0 } as unknown as ClusterViewEvent)
    await new Promise((resolve) => setTimeout(resolve, 10))
    expect(sent).toEqual([{ host: 'h0', add: [expect.objectContaining({ vmId: 'vm-1', owner: 'h2', epoch: 1 })] }])
    records.stop()
  })
})
