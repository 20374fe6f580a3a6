import type { ClusterEvent } from './cluster-event.js'

export interface EventRecord {
  /** Position in this ring, 1, 2, 3 …; never reused while the agent runs. */
  cursor: number
  event: ClusterEvent
}

export interface EventQuery {
  afterCursor?: number
  /** Only events about this VM (its id or its name). */
  vm?: string
  limit?: number
}

export interface EventPage {
  events: EventRecord[]
  /** Pass back as afterCursor to read on. */
  nextCursor: number
  /** Events that fell out of the ring between afterCursor and the oldest one still held. */
  missed: number
}

export const DEFAULT_RING_CAPACITY = 2048
const DEFAULT_PAGE = 500

/**
 * The events this agent has seen, oldest first, bounded: the oldest fall out once `capacity`
 * is reached (an operator wanting history keeps `meshvirt events --follow --json` running,
 * as with `kubectl get events`). Listeners hear every append.
 */
export class EventRing {
  private readonly records: EventRecord[] = []
  private last = 0
  private readonly listeners = new Set<(r: EventRecord) => void>()

  constructor (readonly capacity = DEFAULT_RING_CAPACITY) {}

  append (event: ClusterEvent): EventRecord {
    const record = { cursor: ++this.last, event }
    this.records.push(record)
    if (this.records.length > this.capacity) this.records.splice(0, this.records.length - this.capacity)
    for (const l of this.listeners) l(record)
    return record
  }

  get lastCursor (): number {
    return this.last
  }

  get size (): number {
    return this.records.length
  }

  list (q: EventQuery = {}): EventPage {
    // A cursor from before an agent restart is beyond this ring's end: start over.
    const after = (q.afterCursor ?? 0) > this.last ? 0 : q.afterCursor ?? 0
    const oldest = this.records[0]?.cursor ?? this.last + 1
    const missed = Math.max(0, oldest - after - 1)
    const limit = q.limit !== undefined && q.limit > 0 ? q.limit : DEFAULT_PAGE
    const events: EventRecord[] = []
    let nextCursor = after
    for (let i = Math.max(0, after - oldest + 1); i < this.records.length && events.length < limit; i++) {
      const r = this.records[i] as EventRecord
      nextCursor = r.cursor
      if (q.vm === undefined || q.vm === '' || r.event.vmId === q.vm || r.event.vmName === q.vm) events.push(r)
    }
    return { events, nextCursor, missed }
  }

  /** Resolves with the first page that has an event after the cursor, or an empty page after `waitMs`. */
  async wait (q: EventQuery, waitMs: number, signal?: AbortSignal): Promise<EventPage> {
    let page = this.list(q)
    if (page.events.length > 0 || waitMs <= 0) return page
    return await new Promise<EventPage>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.listeners.delete(listener)
        signal?.removeEventListener('abort', done)
        resolve(page)
      }
      const listener = (): void => {
        page = this.list({ ...q, afterCursor: page.nextCursor })
        if (page.events.length > 0) done()
      }
      const timer = setTimeout(done, waitMs)
      this.listeners.add(listener)
      signal?.addEventListener('abort', done, { once: true })
    })
  }

  subscribe (listener: (r: EventRecord) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }
}
