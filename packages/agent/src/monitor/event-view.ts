import type { meshvirt } from '@meshvirt/proto'
import { eventFromWire, type ClusterEvent } from './cluster-event.js'

export interface EventListView {
  events: Array<{ cursor: number } & ClusterEvent>
  nextCursor: number
  missed: number
}

/** A ListEvents answer as plain data, for the CLI (which does not speak protobuf itself). Unknown kinds are left out. */
export function eventListView (list: meshvirt.v1.IEventList | null | undefined): EventListView {
  const events: EventListView['events'] = []
  for (const r of list?.events ?? []) {
    const e = r.event == null ? undefined : eventFromWire(r.event)
    if (e !== undefined) events.push({ cursor: Number(r.cursor ?? 0), ...e })
  }
  return { events, nextCursor: Number(list?.nextCursor ?? 0), missed: Number(list?.missed ?? 0) }
}
