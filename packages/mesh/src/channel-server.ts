/**
 * The answering end of a request channel (request-channel.ts): reads the peer's tagged requests,
 * runs each protocol's handler with the same limits a stream of its own gets (time-out, concurrent
 * requests per protocol, bytes charged to the peer's share of the ByteBudget) and writes every
 * answer back as soon as it is ready.
 *
 * Back-pressure instead of refusals: a request over its protocol's concurrency waits its turn, and
 * when CHANNEL_MAX_WAITING wait the channel stops reading (yamux stops granting window, so the
 * requester's writes wait too) until half of them have started. Its time-out runs while it waits.
 */
import type { Stream } from '@libp2p/interface'
import { encodeFrame, FrameDecoder, pb, type meshvirt } from '@meshvirt/proto'
import type { ByteBudget } from './byte-budget.js'
import { CHANNEL_ENVELOPE_BYTES, CHANNEL_MAX_REQUEST_BYTES, CHANNEL_PROTOCOL } from './request-channel.js'
import type { FailedRequestReport, RequestHandler } from './request-response.js'

/** Requests read and waiting for a handler slot before the channel stops reading. */
export const CHANNEL_MAX_WAITING = 256
/** A failure's text crosses to the peer at most this long. */
const MAX_FAILURE_CHARS = 512

export interface ServedProtocol {
  handler: RequestHandler
  timeoutMs: number
  maxInbound: number
  maxRequestBytes: number
}

export interface ChannelServerDeps {
  /** The handler of a protocol, or undefined when this host does not serve it. */
  served: (protocol: string) => ServedProtocol | undefined
  budget: ByteBudget
  onFailed: (report: FailedRequestReport) => void
  log: (fmt: string, ...args: unknown[]) => void
}

interface Waiting {
  id: number
  protocol: string
  body: Uint8Array
  /** Bytes charged to the peer's share until the answer is written. */
  charged: number
  deadline: number
}

export function serveChannel (stream: Stream, peer: string, deps: ChannelServerDeps): void {
  new InboundChannel(stream, peer, deps).start()
}

class InboundChannel {
  private readonly decoder = new FrameDecoder(CHANNEL_MAX_REQUEST_BYTES + CHANNEL_ENVELOPE_BYTES)
  private readonly waiting: Waiting[] = []
  private readonly running = new Map<string, number>()
  private closed = false
  private paused = false

  constructor (private readonly stream: Stream, private readonly peer: string, private readonly deps: ChannelServerDeps) {}

  start (): void {
    this.stream.addEventListener('message', (evt) => { this.read(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()) })
    this.stream.addEventListener('close', () => { this.end() })
    // The requester closed its side (an idle channel): answer what runs, then close ours.
    this.stream.addEventListener('remoteCloseWrite', () => { this.closeIfDone() })
  }

  private read (chunk: Uint8Array): void {
    if (this.closed) return
    let frames: Uint8Array[]
    try {
      frames = this.decoder.push(chunk)
    } catch (err) {
      this.broken(err as Error)
      return
    }
    for (const frame of frames) {
      let req: meshvirt.v1.ChannelRequest
      try {
        req = pb.ChannelRequest.decode(frame)
        if (req.body.byteLength > CHANNEL_MAX_REQUEST_BYTES) throw new Error(`a request of ${req.body.byteLength} bytes (limit ${CHANNEL_MAX_REQUEST_BYTES})`)
      } catch (err) {
        this.broken(err as Error)
        return
      }
      const served = this.deps.served(req.protocol)
      if (served === undefined) {
        this.reply(req.id, { failure: `${req.protocol} is not served here` })
        continue
      }
      if (req.body.byteLength > served.maxRequestBytes) {
        this.deps.onFailed({ protocol: req.protocol, peer: this.peer, stage: 'read', error: new Error(`a request of ${req.body.byteLength} bytes (limit ${served.maxRequestBytes})`) })
        this.reply(req.id, { failure: `a request of ${req.body.byteLength} bytes is over ${req.protocol}'s limit of ${served.maxRequestBytes}` })
        continue
      }
      const over = this.deps.budget.take(this.peer, frame.byteLength)
      if (over !== 'ok') {
        this.reply(req.id, { failure: `over the ${over === 'peer' ? 'peer\'s' : 'host\'s'} share of request bytes` })
        continue
      }
      this.waiting.push({ id: req.id, protocol: req.protocol, body: req.body, charged: frame.byteLength, deadline: Date.now() + served.timeoutMs })
    }
    this.pump()
  }

  /** Starts every waiting request whose protocol has a free slot, in arrival order; pauses or resumes reading. */
  private pump (): void {
    for (let i = 0; i < this.waiting.length;) {
      const w = this.waiting[i] as Waiting
      const served = this.deps.served(w.protocol)
      const busy = this.running.get(w.protocol) ?? 0
      if (served !== undefined && busy >= served.maxInbound) { i++; continue }
      this.waiting.splice(i, 1)
      void this.run(w, served)
    }
    if (this.closed) return
    try {
      if (!this.paused && this.waiting.length >= CHANNEL_MAX_WAITING) {
        this.stream.pause()
        this.paused = true
      } else if (this.paused && this.waiting.length <= CHANNEL_MAX_WAITING / 2) {
        this.stream.resume()
        this.paused = false
      }
    } catch { /* the stream is closing: its end() follows */ }
  }

  private async run (w: Waiting, served: ServedProtocol | undefined): Promise<void> {
    this.running.set(w.protocol, (this.running.get(w.protocol) ?? 0) + 1)
    let stage: FailedRequestReport['stage'] = 'handle'
    try {
      if (served === undefined) throw new Error(`${w.protocol} is no longer served here`)
      const left = w.deadline - Date.now()
      if (left <= 0) throw new Error(`no answer within ${served.timeoutMs} ms (it waited its turn that long)`)
      const signal = AbortSignal.timeout(left)
      const body = await served.handler(w.body, this.peer, signal)
      if (signal.aborted) throw new Error(`no answer within ${served.timeoutMs} ms`)
      stage = 'answer'
      if (!this.reply(w.id, { body })) throw new Error('the channel closed before the answer')
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err))
      this.deps.log('%s request from %s on a channel failed while %s: %e', w.protocol, this.peer, stage, error)
      this.deps.onFailed({ protocol: w.protocol, peer: this.peer, stage, error })
      if (stage === 'handle') this.reply(w.id, { failure: error.message.slice(0, MAX_FAILURE_CHARS) })
    } finally {
      this.deps.budget.give(this.peer, w.charged)
      this.running.set(w.protocol, (this.running.get(w.protocol) ?? 1) - 1)
      this.pump()
      this.closeIfDone()
    }
  }

  /** Writes one answer; false when the channel can no longer carry it. */
  private reply (id: number, r: { body?: Uint8Array, failure?: string }): boolean {
    if (this.closed || this.stream.writeStatus !== 'writable') return false
    try {
      this.stream.send(encodeFrame(pb.ChannelReply.encode({ id, ...r }).finish()))
      return true
    } catch {
      return false
    }
  }

  /** Closes our side once the requester closed its own and every request it sent is answered. */
  private closeIfDone (): void {
    if (this.stream.remoteWriteStatus !== 'closed' || this.waiting.length > 0) return
    for (const n of this.running.values()) if (n > 0) return
    this.stream.close().catch((err: Error) => { this.stream.abort(err) })
  }

  /** A frame that cannot be read: the channel is reset (the requester's requests on it fail). */
  private broken (err: Error): void {
    this.deps.log('channel from %s refused: %e', this.peer, err)
    this.deps.onFailed({ protocol: CHANNEL_PROTOCOL, peer: this.peer, stage: 'read', error: err })
    this.stream.abort(err)
    this.end()
  }

  /** The stream is gone: waiting requests are dropped and their bytes given back; running ones finish unanswered. */
  private end (): void {
    if (this.closed) return
    this.closed = true
    for (const w of this.waiting.splice(0)) this.deps.budget.give(this.peer, w.charged)
  }
}
