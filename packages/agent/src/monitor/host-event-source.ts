import type { ClusterView } from '@meshvirt/mesh'
import { nameAuthorities } from '../negotiate/name-authority.js'
import type { EventDraft } from './cluster-event.js'

/**
 * Reports liveness changes of other hosts. Every host observes them, but only one reports each
 * — the first of the other alive hosts by rendezvous hash of the subject — so a death costs one
 * gossiped event, not one per host (no flow may need a message from every host). Views agree
 * within a heartbeat or two; a rare disagreement reports twice, never silently drops on a
 * healthy majority.
 */
export function watchHostEvents (view: ClusterView, selfId: string, emit: (draft: EventDraft) => void): () => void {
  return view.subscribe((e) => {
    if (e.host.self || (e.type !== 'suspect' && e.type !== 'dead' && e.type !== 'alive')) return
    const subject = e.host.hostId
    const witnesses = view.hosts().filter((h) => h.liveness === 'alive' && h.hostId !== subject).map((h) => h.hostId)
    if (nameAuthorities(subject, witnesses)[0] !== selfId) return
    const name = e.host.advert.hostname !== '' ? e.host.advert.hostname : subject.slice(-12)
    const message = e.type === 'alive' ? `${name} is alive again${e.restarted ? ' (restarted)' : ''}` : `${name} is ${e.type}`
    emit({ kind: `host-${e.type}`, subjectHostId: subject, message })
  })
}
