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

export interface VmEventSource {
  /** Tell it the VM records changed (VmManager's onChange): each settled state is then seen. */
  changed: () => void
  stop: () => void
}

/**
 * Turns changes of the VMs this host owns into events, by diffing the VM records. It wakes on
 * `changed()` — coalesced per microtask, so a synchronous burst of writes costs one read while
 * states reached across an await (stopping → stopped) each get their turn — and, as a backstop,
 * when this host's own advert changes (coalesced over ~250 ms, which can merge a quick
 * stop-then-delete into a bare delete). Costs nothing while nothing happens.
 */
export function watchVmEvents (init: VmEventSourceInit): VmEventSource {
  let known = snapshot(init.listVms())
  let queued = false
  let stopped = false
  const check = (): void => {
    queued = false
    const now = snapshot(init.listVms())
    for (const d of diffVms(known, now)) init.emit(d)
    known = now
  }
  const unsubscribe = init.view.subscribe((e) => {
    if (e.host.self && e.type === 'updated') check()
  })
  return {
    changed: () => {
      if (queued || stopped) return
      queued = true
      queueMicrotask(check)
    },
    stop: () => {
      if (stopped) return
      stopped = true
      unsubscribe()
      check() // a change made just before stop is still told
    }
  }
}

function snapshot (rows: VmRow[]): Map<string, VmFacts> {
  // An incoming migration is not this host's VM until it runs here (VmManager does not list or gossip it either).
  return new Map(rows.filter((r) => (r.state as string) !== 'incoming').map((r) => [r.id, { id: r.id, name: r.name, epoch: r.epoch, state: r.state, lastError: r.lastError ?? '' }]))
}
