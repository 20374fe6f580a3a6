import type { ClusterView } from '@meshvirt/mesh'
import type { VmRow } from '../store/state-store.js'
import type { EventDraft } from './cluster-event.js'
import { diffVms, type VmFacts } from './vm-diff.js'

export interface VmEventSourceInit {
  view: ClusterView
  /** This host's VM records (VmManager.list). */
  listVms: () => VmRow[]
  emit: (draft: EventDraft) => void
}

/**
 * Turns changes of the VMs this host owns into events. It wakes when this host's own advert
 * changes (the agent re-advertises after every VM change, coalesced), so it costs nothing while
 * nothing happens, and reads the VM records themselves for what the advert leaves out.
 */
export function watchVmEvents (init: VmEventSourceInit): () => void {
  let known = snapshot(init.listVms())
  const check = (): void => {
    const now = snapshot(init.listVms())
    for (const d of diffVms(known, now)) init.emit(d)
    known = now
  }
  const unsubscribe = init.view.subscribe((e) => {
    if (e.host.self && e.type === 'updated') check()
  })
  return () => {
    unsubscribe()
    check() // a change made just before stop is still told
  }
}

function snapshot (rows: VmRow[]): Map<string, VmFacts> {
  return new Map(rows.map((r) => [r.id, { id: r.id, name: r.name, epoch: r.epoch, state: r.state, lastError: r.lastError ?? '' }]))
}
