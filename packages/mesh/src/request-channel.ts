/**
 * The requester's end of a request channel (proto/channel.proto): one long-lived stream to a peer
 * carrying the small requests of every request/response protocol, each tagged with an id, the
 * answers coming back on the same stream in whatever order they are ready. A stream per request
 * costs both hosts ~1 ms of CPU to open, negotiate and close (yamux SYN/ACK/FIN, multistream-select,
 * the stream's objects); on a channel a request is one frame each way.
 *
 * A channel that breaks (reset, closed, the connection gone) fails every request in flight on it,
 * as a broken stream would have failed each; the next request opens another. One with nothing in
 * flight for CHANNEL_IDLE_MS is closed.
 */
import type { Stream } from '@libp2p/interface'
import { encodeFrame, FrameDecoder, MAX_FRAME_BYTES, pb } from '@meshvirt/proto'

export const CHANNEL_PROTOCOL = '/meshvirt/channel/1.0.0'
/**
 * Requests up to this size ride a channel; larger ones get a stream of their own: a channel is one
 * ordered byte stream, so a large frame would hold up every request behind it.
 */
export const CHANNEL_MAX_REQUEST_BYTES = 64 * 1024
/** A channel with nothing in flight for this long is closed. */
export const CHANNEL_IDLE_MS = 60_000
/** Room for a frame's envelope beside its body (id, protocol, failure text). */
export const CHANNEL_ENVELOPE_BYTES = 4096

/** The channel broke, or the peer answered with a failure: what a reset stream would have been. */
export class ChannelRequestError extends Error {
  override readonly name = 'ChannelRequestError'
  /** `answered`: the peer itself sent this failure (it is up and reading the channel). */
  constructor (message: string, readonly answered = false) {
    super(message)
  }
}

interface Pending {
  resolve: (body: Uint8Array) => void
  reject: (err: Error) => void
  maxResponseBytes: number
}

export interface ChannelRequestOptions {
  signal: AbortSignal
  maxResponseBytes?: number
}

export class OutboundChannel {
  private readonly pending = new Map<number, Pending>()
  private readonly decoder = new FrameDecoder(MAX_FRAME_BYTES + CHANNEL_ENVELOPE_BYTES)
  private nextId = 1
  private idle: ReturnType<typeof setTimeout> | undefined
  private broken: Error | undefined

  /** `onEnd` is told once, when the channel can carry no more requests. */
  constructor (private readonly stream: Stream, private readonly onEnd: () => void, private readonly idleMs = CHANNEL_IDLE_MS) {
    stream.addEventListener('message', (evt) => {
      try {
        for (const frame of this.decoder.push(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray())) this.answer(frame)
      } catch (err) {
        this.stream.abort(err as Error)
        this.fail(new ChannelRequestError(`bad answer on the channel: ${(err as Error).message}`))
      }
    })
    stream.addEventListener('close', (evt) => { this.fail(new ChannelRequestError(`the channel closed${evt.error !== undefined ? `: ${evt.error.message}` : ''}`)) })
    stream.addEventListener('remoteCloseWrite', () => { this.fail(new ChannelRequestError('the peer closed the channel')) })
    this.armIdle()
  }

  /** Whether the channel still takes requests. */
  get open (): boolean {
    return this.broken === undefined && this.stream.status === 'open' && this.stream.writeStatus === 'writable'
  }

  get inFlight (): number {
    return this.pending.size
  }

  /** Sends one request and resolves with its answer; rejects with ChannelRequestError, or the signal's reason. */
  async request (protocol: string, body: Uint8Array, o: ChannelRequestOptions): Promise<Uint8Array> {
    if (!this.open) throw this.broken ?? new ChannelRequestError('the channel is closed')
    const id = this.takeId()
    const frame = encodeFrame(pb.ChannelRequest.encode({ id, protocol, body }).finish())
    const answered = new Promise<Uint8Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, maxResponseBytes: o.maxResponseBytes ?? MAX_FRAME_BYTES })
    })
    const onAbort = (): void => { this.settle(id)?.reject(o.signal.reason as Error) }
    o.signal.addEventListener('abort', onAbort, { once: true })
    clearTimeout(this.idle)
    try {
      if (o.signal.aborted) onAbort()
      // Back-pressure: a peer that reads slowly holds requests here, not in an ever-growing buffer.
      if (this.stream.writableNeedsDrain) await this.stream.onDrain({ signal: o.signal })
      if (this.pending.has(id)) this.stream.send(frame)
    } catch (err) {
      if (!o.signal.aborted) this.fail(new ChannelRequestError(`could not write to the channel: ${(err as Error).message}`))
      this.settle(id)?.reject(err as Error)
    }
    try {
      return await answered
    } finally {
      o.signal.removeEventListener('abort', onAbort)
    }
  }

  /** Closes the channel; requests in flight fail. */
  close (): void {
    this.fail(new ChannelRequestError('the channel was closed'))
    this.stream.close().catch((err: Error) => { this.stream.abort(err) })
  }

  private answer (frame: Uint8Array): void {
    const reply = pb.ChannelReply.decode(frame)
    const p = this.settle(reply.id)
    if (p === undefined) return // given up on (time-out, abort): its answer is dropped
    if (reply.failure !== '') p.reject(new ChannelRequestError(reply.failure, true))
    else if (reply.body.byteLength > p.maxResponseBytes) p.reject(new ChannelRequestError(`answer of ${reply.body.byteLength} bytes exceeds ${p.maxResponseBytes}`))
    else p.resolve(reply.body)
  }

  /** Takes a request out of the pending table (once), re-arming the idle timer when that empties it. */
  private settle (id: number): Pending | undefined {
    const p = this.pending.get(id)
    if (p === undefined) return undefined
    this.pending.delete(id)
    if (this.pending.size === 0) this.armIdle()
    return p
  }

  private takeId (): number {
    do this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1
    while (this.pending.has(this.nextId))
    return this.nextId
  }

  private armIdle (): void {
    clearTimeout(this.idle)
    if (this.broken !== undefined) return
    this.idle = setTimeout(() => { if (this.pending.size === 0) this.close() }, this.idleMs)
    this.idle.unref?.()
  }

  private fail (err: Error): void {
    if (this.broken !== undefined) return
    this.broken = err
    clearTimeout(this.idle)
    const all = [...this.pending.values()]
    this.pending.clear()
    for (const p of all) p.reject(err)
    this.onEnd()
  }
}
