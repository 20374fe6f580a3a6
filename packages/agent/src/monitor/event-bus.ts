import { TopicValidatorResult, type Message } from '@libp2p/gossipsub'
import type { PrivateKey } from '@libp2p/interface'
import type { ClusterViewEvent, MeshNode } from '@meshvirt/mesh'
import { pb } from '@meshvirt/proto'
import type { Logger } from '../log/logger.js'
import type { ClusterEvent, EventDraft } from './cluster-event.js'
import { EmitterOrder } from './emitter-order.js'
import { EventRing, type EventRecord } from './event-ring.js'
import { openSignedEvent, signEvent, type EventRejectReason } from './signed-event.js'

export const EVENTS_PROTOCOL = '/meshvirt/events/1.0.0'
/** Own events kept signed, to answer pulls; a receiver further behind than this loses the oldest. */
export const OWN_HISTORY = 256
/** Pulls of a host that has not registered the protocol yet (it attaches after the mesh starts). */
const PULL_RETRIES = 3
const PULL_RETRY_MS = 1_000
const PULL_TIMEOUT_MS = 5_000
/**
 * A hole waits this long for gossip to fill it before pulling: copies of one emitter's messages
 * travel different mesh paths and may arrive out of order, so most holes close by themselves.
 */
export const GAP_WAIT_MS = 250
/**
 * A host follows the cluster's stream only while somebody reads it there, and this long after the
 * last read: `meshvirt events` now and then, or `--follow`, keeps it followed. Flooding every
 * event to every host cost a placement storm half its CPU (~100 copies received per placement).
 */
export const FOLLOW_MS = 10 * 60_000
/** A reader's first page waits at most this long for the other hosts' backlogs. */
export const CATCH_UP_MS = 3_000

export function eventTopic (clusterName: string): string {
  return `/meshvirt/${clusterName}/events/1`
}

export interface EventBusInit {
  mesh: MeshNode
  clusterName: string
  /** The host identity key: every event this host emits is signed with it. */
  privateKey: PrivateKey
  ring?: EventRing
  log: Logger
  clock?: () => number
  /** How long the stream is followed after its last read (FOLLOW_MS). */
  followMs?: number
}

/** What reads the cluster's events: the ring, and the calls that make this host follow the stream. */
export type EventReader = Pick<EventBus, 'ring' | 'follow' | 'hold'>

export interface EventCounters {
  emitted: number
  received: number
  pulled: number
  duplicates: number
  /** Events accepted past a hole the emitter could no longer fill. */
  gapsAccepted: number
  rejected: Record<EventRejectReason | 'unsigned', number>
}

/**
 * The cluster event stream on one host. Emitting signs the event with the host key, appends it
 * to the local ring and floods it on the events topic. Receiving checks the signature and that
 * the gossip signer is the emitter (topic validator), then keeps each emitter's events in order;
 * a hole (lost message, or a host met after it emitted) is filled by pulling from the emitter.
 */
export class EventBus {
  readonly ring: EventRing
  readonly topic: string
  readonly counters: EventCounters = { emitted: 0, received: 0, pulled: 0, duplicates: 0, gapsAccepted: 0, rejected: { unsigned: 0, oversized: 0, undecodable: 0, invalid: 0, 'bad-signature': 0, 'signer-mismatch': 0 } }
  private readonly order = new EmitterOrder()
  private readonly own: Array<{ event: ClusterEvent, bytes: Uint8Array }> = []
  private readonly accepted = new WeakMap<Uint8Array, ClusterEvent>()
  private readonly pending = new Map<string, ClusterEvent[]>()
  private readonly pulling = new Set<string>()
  private readonly gapTimers = new Map<string, NodeJS.Timeout>()
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly clock: () => number
  private seq = 0
  private emitting: Promise<unknown> = Promise.resolve()
  private unsubscribeView: (() => void) | undefined
  private stopped = false
  private following = false
  private readers = 0
  private followTimer: NodeJS.Timeout | undefined
  private catchUp: Promise<void> = Promise.resolve()
  private readonly pullsDone = new Map<string, Array<() => void>>()

  constructor (private readonly init: EventBusInit) {
    this.ring = init.ring ?? new EventRing()
    this.topic = eventTopic(init.clusterName)
    this.clock = init.clock ?? Date.now
  }

  get selfId (): string {
    return this.init.mesh.hostId
  }

  /** Whether this host follows the cluster's stream now (somebody read it here lately). */
  get isFollowing (): boolean {
    return this.following
  }

  async start (): Promise<void> {
    const { mesh } = this.init
    const pubsub = mesh.libp2p.services.pubsub
    pubsub.topicValidators.set(this.topic, this.validate)
    pubsub.addEventListener('message', this.onMessage)
    await mesh.handle(EVENTS_PROTOCOL, async (bytes) => this.answerPull(bytes))
    this.unsubscribeView = mesh.view.subscribe((e) => { this.onView(e) })
  }

  /**
   * Somebody reads the cluster's stream on this host (a page of `meshvirt events`, the dashboard).
   * Until now the ring held this host's own events; from now until FOLLOW_MS after the last read
   * it follows every host's: it subscribes to the events topic, and pulls from each live host what
   * that host keeps past our position in its stream. Resolves once those backlogs are in, or after
   * CATCH_UP_MS, so the first page shows the cluster's recent events and not only ours.
   */
  async follow (): Promise<void> {
    if (this.stopped) return
    this.renewFollow()
    if (!this.following) {
      this.following = true
      this.init.mesh.libp2p.services.pubsub.subscribe(this.topic)
      const live = this.init.mesh.view.hosts().filter((h) => !h.self && h.liveness !== 'dead')
      this.catchUp = Promise.all(live.map(async (h) => { await this.pull(h.hostId) })).then(() => {})
    }
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.catchUp, new Promise<void>((resolve) => { timer = setTimeout(resolve, CATCH_UP_MS); timer.unref() })])
    clearTimeout(timer)
  }

  /** A reader that stays (a dashboard's stream): followed while it is there. Returns its release. */
  hold (): () => void {
    this.readers++
    void this.follow()
    let released = false
    return () => {
      if (released) return
      released = true
      this.readers--
      this.renewFollow()
    }
  }

  private renewFollow (): void {
    if (this.followTimer !== undefined) clearTimeout(this.followTimer)
    this.followTimer = setTimeout(() => {
      this.followTimer = undefined
      if (this.readers > 0) this.renewFollow()
      else this.unfollow()
    }, this.init.followMs ?? FOLLOW_MS)
    this.followTimer.unref()
  }

  /** Nobody has read the stream here for FOLLOW_MS: back to this host's own events. Positions stay, so the next follow pulls what it missed. */
  private unfollow (): void {
    if (!this.following || this.stopped) return
    this.following = false
    try { this.init.mesh.libp2p.services.pubsub.unsubscribe(this.topic) } catch {}
    for (const t of this.gapTimers.values()) clearTimeout(t)
    this.gapTimers.clear()
    for (const hostId of [...this.pending.keys()]) if (!this.pulling.has(hostId)) this.pending.delete(hostId)
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.unsubscribeView?.()
    if (this.followTimer !== undefined) clearTimeout(this.followTimer)
    for (const done of this.pullsDone.values()) for (const d of done) d()
    this.pullsDone.clear()
    for (const t of this.timers) clearTimeout(t)
    for (const t of this.gapTimers.values()) clearTimeout(t)
    const pubsub = this.init.mesh.libp2p.services.pubsub
    pubsub.removeEventListener('message', this.onMessage)
    if (pubsub.topicValidators.get(this.topic) === this.validate) pubsub.topicValidators.delete(this.topic)
    try { pubsub.unsubscribe(this.topic) } catch {}
    await this.emitting
    await this.init.mesh.unhandle(EVENTS_PROTOCOL).catch(() => {})
  }

  /** Signs, records and publishes an event of this host. Events are numbered in call order. */
  async emit (draft: EventDraft): Promise<ClusterEvent> {
    const next = this.emitting.then(async () => {
      const event: ClusterEvent = {
        hostId: this.selfId,
        incarnation: this.init.mesh.incarnation,
        seq: ++this.seq,
        timeMs: this.clock(),
        vmId: '',
        vmName: '',
        vmEpoch: 0,
        subjectHostId: '',
        message: '',
        ...draft
      }
      const bytes = await signEvent(this.init.privateKey, event)
      this.own.push({ event, bytes })
      if (this.own.length > OWN_HISTORY) this.own.shift()
      this.counters.emitted++
      this.ring.append(event)
      if (!this.stopped) {
        await this.init.mesh.libp2p.services.pubsub.publish(this.topic, bytes).catch((err: unknown) => {
          // Receivers pull what they missed at the next event of ours (gap) or when they meet us.
          this.init.log.debug('publishing an event failed', { seq: event.seq, err: (err as Error).message })
        })
      }
      return event
    })
    this.emitting = next.catch(() => {})
    return await next
  }

  subscribe (listener: (r: EventRecord) => void): () => void {
    return this.ring.subscribe(listener)
  }

  private readonly validate = async (_peer: unknown, msg: Message): Promise<TopicValidatorResult> => {
    if (msg.type !== 'signed') {
      this.counters.rejected.unsigned++
      return TopicValidatorResult.Reject
    }
    // A 'signed' message: gossipsub (StrictSign) has checked msg.from's signature over these bytes.
    const opened = await openSignedEvent(msg.data, msg.from.toString(), { signerVerified: true })
    if (!opened.ok) {
      this.counters.rejected[opened.reason]++
      this.init.log.warn('rejected an event', { peer: msg.from.toString(), reason: opened.reason, detail: opened.detail })
      return TopicValidatorResult.Reject
    }
    this.accepted.set(msg.data, opened.event)
    return TopicValidatorResult.Accept
  }

  private readonly onMessage = (evt: CustomEvent<Message>): void => {
    if (evt.detail.topic !== this.topic || !this.following) return
    const event = this.accepted.get(evt.detail.data)
    if (event === undefined) return
    this.counters.received++
    this.receive(event)
  }

  private receive (e: ClusterEvent): void {
    if (e.hostId === this.selfId) return
    const admission = this.order.admit(e.hostId, e.incarnation, e.seq)
    if (admission === 'next') {
      this.take(e)
      this.drain(e.hostId)
    } else if (admission === 'gap') {
      const held = this.pending.get(e.hostId) ?? []
      if (!held.some((h) => h.incarnation === e.incarnation && h.seq === e.seq)) held.push(e)
      this.pending.set(e.hostId, held)
      if (!this.gapTimers.has(e.hostId) && !this.pulling.has(e.hostId)) {
        const t = setTimeout(() => {
          this.gapTimers.delete(e.hostId)
          if ((this.pending.get(e.hostId)?.length ?? 0) > 0) void this.pull(e.hostId)
        }, GAP_WAIT_MS)
        t.unref()
        this.gapTimers.set(e.hostId, t)
      }
    } else this.counters.duplicates++
  }

  /** Takes the held events of `hostId` that have become next in line. */
  private drain (hostId: string): void {
    const held = this.pending.get(hostId)
    if (held === undefined || this.pulling.has(hostId)) return
    held.sort((a, b) => a.incarnation - b.incarnation || a.seq - b.seq)
    while (held.length > 0) {
      const h = held[0] as ClusterEvent
      const admission = this.order.admit(h.hostId, h.incarnation, h.seq)
      if (admission === 'gap') break
      held.shift()
      if (admission === 'next') this.take(h)
      else this.counters.duplicates++
    }
    if (held.length === 0) {
      this.pending.delete(hostId)
      const t = this.gapTimers.get(hostId)
      if (t !== undefined) { clearTimeout(t); this.gapTimers.delete(hostId) }
    }
  }

  private take (e: ClusterEvent): void {
    this.order.take(e.hostId, e.incarnation, e.seq)
    this.ring.append(e)
  }

  /** Takes events in stream order, accepting holes that can no longer be filled. */
  private takeAll (events: ClusterEvent[]): void {
    events.sort((a, b) => a.incarnation - b.incarnation || a.seq - b.seq)
    for (const e of events) {
      const admission = this.order.admit(e.hostId, e.incarnation, e.seq)
      if (admission === 'duplicate' || admission === 'stale') { this.counters.duplicates++; continue }
      if (admission === 'gap') this.counters.gapsAccepted++
      this.take(e)
    }
  }

  private onView (e: ClusterViewEvent): void {
    if (e.host.self || !this.following) return
    if (e.type === 'joined' || (e.type === 'alive' && e.restarted)) void this.pull(e.host.hostId)
  }

  /**
   * Fetches from `hostId` what follows our position in its stream; one pull per host at a time.
   * Resolves once that host's pull has ended, however it ended.
   */
  private async pull (hostId: string): Promise<void> {
    if (this.stopped) return
    const done = new Promise<void>((resolve) => { this.pullsDone.set(hostId, [...(this.pullsDone.get(hostId) ?? []), resolve]) })
    if (!this.pulling.has(hostId)) this.pullOnce(hostId, 0)
    await done
  }

  private pullOnce (hostId: string, attempt: number): void {
    this.pulling.add(hostId)
    const pos = this.order.position(hostId)
    // Up to the first held event when filling a hole; otherwise everything the emitter keeps.
    const held = this.pending.get(hostId)?.filter((h) => pos === undefined || h.incarnation === pos.incarnation).map((h) => h.seq)
    const firstHeld = held !== undefined && held.length > 0 && pos !== undefined ? Math.min(...held) : undefined
    const limit = firstHeld !== undefined ? Math.max(1, Math.min(OWN_HISTORY, firstHeld - 1 - (pos?.seq ?? 0))) : OWN_HISTORY
    const req = pb.EventsPull.encode({ incarnation: pos?.incarnation ?? 0, afterSeq: pos?.seq ?? 0, limit }).finish()
    void this.init.mesh.request(hostId, EVENTS_PROTOCOL, req, { timeoutMs: PULL_TIMEOUT_MS })
      .then(async (bytes) => {
        const batch = pb.EventsBatch.decode(bytes)
        const events: ClusterEvent[] = []
        for (const signed of batch.events) {
          const opened = await openSignedEvent(pb.SignedEvent.encode(signed).finish(), hostId)
          if (opened.ok) events.push(opened.event)
          else this.counters.rejected[opened.reason]++
        }
        this.counters.pulled += events.length
        this.finishPull(hostId, events)
      })
      .catch((err: unknown) => {
        if (!this.stopped && attempt < PULL_RETRIES) {
          const t = setTimeout(() => { this.timers.delete(t); this.pullOnce(hostId, attempt + 1) }, PULL_RETRY_MS * 2 ** attempt)
          t.unref()
          this.timers.add(t)
          return
        }
        this.init.log.debug('pulling events failed', { peer: hostId, err: (err as Error).message })
        this.finishPull(hostId, [])
      })
  }

  private finishPull (hostId: string, pulled: ClusterEvent[]): void {
    this.pulling.delete(hostId)
    const held = this.pending.get(hostId) ?? []
    this.pending.delete(hostId)
    if (!this.stopped) this.takeAll([...pulled, ...held])
    for (const d of this.pullsDone.get(hostId) ?? []) d()
    this.pullsDone.delete(hostId)
  }

  private answerPull (bytes: Uint8Array): Uint8Array {
    const req = pb.EventsPull.decode(bytes)
    const limit = Math.min(req.limit > 0 ? req.limit : OWN_HISTORY, OWN_HISTORY)
    const incarnation = this.init.mesh.incarnation
    const after = Number(req.incarnation) === incarnation ? Number(req.afterSeq) : 0
    // Oldest first: a puller filling a hole wants the events right after its position. A puller
    // from another incarnation (or none) gets the oldest still kept, then the rest by gossip or
    // the next pull.
    const mine = this.own.filter((o) => o.event.seq > after).slice(0, limit)
    return pb.EventsBatch.encode({ events: mine.map((o) => pb.SignedEvent.decode(o.bytes)) }).finish()
  }
}
