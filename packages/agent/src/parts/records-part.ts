import type { ClusterView } from '@meshvirt/mesh'
import type { Logger } from '../log/logger.js'
import type { PeerClient } from '../negotiate/peer-client.js'
import { VmRecords, type VmRecordsDeps } from '../records/vm-records.js'
import type { StateStore, VmRow } from '../store/state-store.js'
import { VmRecordStore } from '../store/vm-record-store.js'
import type { Teardown } from '../util/teardown.js'

/** The records of the VMs other hosts own (records/), as a part of the agent. */
export interface RecordsPart {
  /**
   * Whether a VM found down at recovery may start: only once a peer said it was not force-deleted
   * meanwhile. Asked before the mesh is up, it waits for `start`; a stop before that answers no.
   */
  recoveryGate: (vm: VmRow) => Promise<boolean>
  /** Whether a guest that exited while this agent ran may start again (tombstones, twins in gossip). */
  restartGate: (vm: VmRow) => Promise<boolean>
  /** With the mesh up: the records follow the view (stopped with the teardown). */
  start: (core: { view: ClusterView, peers: PeerClient } & Pick<VmRecordsDeps, 'vms' | 'releaseName' | 'onForceDeleted'>) => VmRecords
}

export function recordsPart (ctx: { selfId: string, store: StateStore, root: Logger, teardown: Teardown, expectPeers: boolean }): RecordsPart {
  let open: (records: VmRecords | undefined) => void = () => {}
  const ready = new Promise<VmRecords | undefined>((resolve) => { open = resolve })
  ctx.teardown.add('recovery gate', () => { open(undefined) })
  return {
    recoveryGate: async (vm) => {
      const records = await ready
      return records === undefined ? false : await records.recoveryGate(vm)
    },
    restartGate: async (vm) => {
      const records = await ready
      return records === undefined ? false : await records.restartGate(vm)
    },
    start: (core) => {
      const records = new VmRecords({ ...core, selfId: ctx.selfId, store: new VmRecordStore(ctx.store), expectPeers: ctx.expectPeers, log: ctx.root.child('records', { host: ctx.selfId }) })
      records.start()
      ctx.teardown.add('vm records', () => { records.stop() })
      open(records)
      return records
    }
  }
}
