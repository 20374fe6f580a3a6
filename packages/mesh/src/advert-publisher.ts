/**
 * Publishes this host's advert: at start, on every change (the first change at once, the
 * following ones coalesced over a window that starts at `publishDebounceMs` and doubles with
 * every window a burst keeps filling, up to `publishDebounceMaxMs`), again when the first subscriber appears
 * if the latest advert reached nobody (published before any mesh existed), and as a heartbeat
 * whose period grows with the cluster (see heartbeatIntervalMs).
 */
import { decodeHostAdvert, encodeHostAdvert } from './advert-codec.js'
import { InvalidAdvertError } from './errors.js'
import type { HostAdvert, HostAdvertContent } from './host-advert.js'
import { heartbeatIntervalMs } from './suspicion.js'
import type { MeshTiming } from './timing.js'

/** ±10 % on each heartbeat so that hosts started together do not publish in lockstep. */
const HEARTBEAT_JITTER = 0.1

export interface AdvertPublisherInit {
  hostId: string
  incarnation: number
  content: HostAdvertContent
  timing: Pick<MeshTiming, 'heartbeatIntervalMs' | 'maxAdvertsPerSecond' | 'publishDebounceMs'> & Partial<Pick<MeshTiming, 'publishDebounceMaxMs'>>
  /** Current listen addresses, sent in every advert. */
  addrs: () => string[]
  /** Hosts believed alive: spaces heartbeats out as the cluster grows. */
  clusterSize: () => number
  /**
   * Sends the encoded advert on the topic; `flood` asks for every connected subscriber rather
   * than the mesh (for news: changes and first adverts; heartbeats ride the mesh).
   */
  send: (bytes: Uint8Array, flood: boolean) => Promise<{ recipients: number }>
  /** Called with every advert before it is sent (the view applies its own host's advert). */
  onAdvert: (advert: HostAdvert) => void
  /** A send failed, or content peers would refuse was left unpublished (InvalidAdvertError). */
  onError: (err: unknown) => void
  clock?: () => number
}

export class AdvertPublisher {
  private content: HostAdvertContent
  /** The content of the latest advert published: what stays if newer content is refused. */
  private publishedContent: HostAdvertContent
  private seq = 0
  private lastPublishMs = -Infinity
  /** The coalescing window now: publishDebounceMs, doubled by each burst window, back after a quiet one. */
  private windowMs: number
  private debounceTimer: NodeJS.Timeout | undefined
  private heartbeatTimer: NodeJS.Timeout | undefined
  private running = false
  /** Peers the latest advert went to directly; 0 until the first subscriber is known. */
  private lastRecipients = 0
  private latest: HostAdvert
  private latestBytes: Uint8Array | undefined
  private readonly clock: () => number
  private readonly minWindowMs: number
  private readonly maxWindowMs: number

  /** Throws InvalidAdvertError if peers would refuse the initial content. */
  constructor (private readonly init: AdvertPublisherInit) {
    this.clock = init.clock ?? Date.now
    this.minWindowMs = init.timing.publishDebounceMs
    this.maxWindowMs = Math.max(this.minWindowMs, init.timing.publishDebounceMaxMs ?? 0)
    this.windowMs = this.minWindowMs
    this.content = this.publishedContent = init.content
    this.latest = this.build(this.content, 0)
    const refused = refusal(encodeHostAdvert(this.latest))
    if (refused !== undefined) throw new InvalidAdvertError(refused)
  }

  start (): void {
    this.running = true
    this.publishNow(true)
  }

  stop (): void {
    this.running = false
    clearTimeout(this.debounceTimer)
    clearTimeout(this.heartbeatTimer)
    this.debounceTimer = this.heartbeatTimer = undefined
  }

  /** The advert most recently published (or about to be). */
  current (): HostAdvert {
    return this.latest
  }

  /** current() as it went on the wire (view sync hands it to newcomers as is). */
  currentBytes (): Uint8Array {
    this.latestBytes ??= encodeHostAdvert(this.latest)
    return this.latestBytes
  }

  /**
   * Replaces parts of the content. It is checked when published, once per advert rather than once
   * per change: content peers would refuse goes to onError as an InvalidAdvertError and the last
   * good advert stays (a host does not stop advertising, or crash, over one bad field). `urgent`:
   * published now even inside the coalescing window (news that others act on at once, such as a
   * VM's NICs arriving here: every host re-points its forwarding when it hears it). `hint`: nobody
   * acts on it at once (the host's load, its VMs' measured use): the next heartbeat carries it
   * through the mesh instead of a flood to every connection now (an idle 11-host cluster spent
   * about a quarter of its gossip on load samples flooded every 15 s).
   */
  update (patch: Partial<HostAdvertContent>, opts: { urgent?: boolean, hint?: boolean } = {}): void {
    this.content = { ...this.content, ...patch }
    if (opts.hint === true && opts.urgent !== true) return
    if (opts.urgent === true && this.running) {
      clearTimeout(this.debounceTimer)
      this.debounceTimer = undefined
      this.publishNow(true)
      return
    }
    this.publishSoon()
  }

  /**
   * A peer subscribed to the topic. If our latest advert reached nobody (we are new, or were
   * alone), it is sent again now instead of at the next heartbeat. Otherwise the newcomer gets
   * our next heartbeat through the mesh: re-publishing to the whole cluster on every new
   * connection turned joins into a storm (50 hosts: event loop blocked for seconds).
   */
  onSubscriber (): void {
    if (this.lastRecipients !== 0) return
    // What we published reached nobody: it is news for the newcomer, not part of a burst.
    this.windowMs = this.minWindowMs
    clearTimeout(this.debounceTimer)
    this.debounceTimer = undefined
    this.publishSoon()
  }

  /**
   * Publishes within the coalescing window: at once if nothing went out during it. A change inside
   * the window is a burst: it waits for the window's end, and the next window is twice as long
   * (up to publishDebounceMaxMs), so a placement storm costs each host a few adverts a second
   * however many VMs land on it. A change after a quiet window goes out at once, and the window
   * is back at publishDebounceMs.
   */
  publishSoon (): void {
    if (!this.running || this.debounceTimer !== undefined) return
    const sinceLast = this.clock() - this.lastPublishMs
    if (sinceLast >= this.windowMs) {
      this.windowMs = this.minWindowMs
      this.publishNow(true)
      return
    }
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined
      // A burst that nobody hears yet (a host starting alone) does not widen the window.
      if (this.lastRecipients > 0) this.windowMs = Math.min(this.maxWindowMs, this.windowMs * 2)
      this.publishNow(true)
    }, this.windowMs - sinceLast)
  }

  /** The coalescing window now (grows through a burst of changes). */
  get coalesceWindowMs (): number {
    return this.windowMs
  }

  private publishNow (flood: boolean): void {
    if (!this.running) return
    let advert = this.build(this.content, this.seq + 1)
    let bytes = encodeHostAdvert(advert)
    const refused = refusal(bytes)
    if (refused !== undefined) {
      this.init.onError(new InvalidAdvertError(`${refused}; not published, the previous content stays`))
      // The last good content goes out instead (a heartbeat must still beat) until the next change.
      this.content = this.publishedContent
      advert = this.build(this.content, this.seq + 1)
      bytes = encodeHostAdvert(advert)
      if (refusal(bytes) !== undefined) { this.scheduleHeartbeat(); return }
    }
    this.seq++
    this.publishedContent = this.content
    this.latest = advert
    this.lastPublishMs = this.clock()
    this.latestBytes = bytes
    this.init.onAdvert(this.latest)
    this.init.send(this.latestBytes, flood)
      .then((r) => { this.lastRecipients = r.recipients }, this.init.onError)
    this.scheduleHeartbeat()
  }

  private scheduleHeartbeat (): void {
    clearTimeout(this.heartbeatTimer)
    const jitter = 1 + HEARTBEAT_JITTER * (2 * Math.random() - 1)
    this.heartbeatTimer = setTimeout(() => { this.publishNow(false) }, Math.round(this.intervalMs() * jitter))
  }

  private intervalMs (): number {
    const t = this.init.timing
    return heartbeatIntervalMs(t.heartbeatIntervalMs, this.init.clusterSize(), t.maxAdvertsPerSecond)
  }

  private build (content: HostAdvertContent, seq: number): HostAdvert {
    return {
      ...content,
      hostId: this.init.hostId,
      incarnation: this.init.incarnation,
      seq,
      addrs: this.init.addrs(),
      sentAtMs: Date.now(),
      heartbeatIntervalMs: this.intervalMs()
    }
  }
}

/** Why peers would refuse these bytes, or undefined if they would take them. */
function refusal (bytes: Uint8Array): string | undefined {
  const decoded = decodeHostAdvert(bytes)
  return decoded.ok ? undefined : decoded.reason
}
