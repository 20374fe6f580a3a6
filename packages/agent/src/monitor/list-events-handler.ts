import type { meshvirt } from '@meshvirt/proto'
import { eventToWire } from './cluster-event.js'
import type { EventReader } from './event-bus.js'

/** A long poll holds a control connection; beyond this the client simply asks again. */
export const MAX_EVENTS_WAIT_MS = 25_000

/**
 * The control API's ListEvents: this agent's ring after a cursor, optionally waiting for news
 * (`meshvirt events --follow`). Each call keeps this host following the cluster's stream.
 */
export function listEventsHandler (events: EventReader): (req: meshvirt.v1.ControlRequest) => Promise<meshvirt.v1.IControlResponse> {
  return async (req) => {
    const q = req.listEvents
    const query = { afterCursor: Number(q?.afterCursor ?? 0), vm: q?.vm ?? '', limit: q?.limit ?? 0 }
    await events.follow()
    const page = await events.ring.wait(query, Math.min(q?.waitMs ?? 0, MAX_EVENTS_WAIT_MS))
    return {
      eventList: {
        events: page.events.map((r) => ({ cursor: r.cursor, event: eventToWire(r.event) })),
        nextCursor: page.nextCursor,
        missed: page.missed
      }
    }
  }
}
