/**
 * Request/response between hosts. A small request to a peer that serves request channels rides
 * the one long-lived channel this host keeps to it (request-channel.ts, channel-server.ts): one
 * frame each way. Otherwise — a large request, a bulk answer (`ownStream`), a peer of an older
 * release, a channel that could not be opened — it gets a stream of its own: the requester writes
 * a length-prefixed frame and closes its write side, the handler answers with one frame and closes
 * (opening a stream costs both hosts ~1 ms of CPU here). Handlers are the same either way.
 */
import { MAX_FRAME_BYTES } from '@meshvirt/proto'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { readBudgetedFrame } from './budgeted-frame.js'
import { ByteBudget, type ByteBudgetInit } from './byte-budget.js'
import { RequestAbortedError, RequestFailedError, RequestTimeoutError } from './errors.js'
import { serveChannel, type ServedProtocol } from './channel-server.js'
import { CHANNEL_MAX_REQUEST_BYTES, CHANNEL_PROTOCOL, ChannelRequestError, OutboundChannel } from './request-channel.js'

/** Time to open a channel; a request whose channel does not open in it goes on a stream of its own. */
const CHANNEL_OPEN_TIMEOUT_MS = 5_000
/** After a peer turned out not to serve channels (or was not identified yet), how long before looking again. */
const NO_CHANNEL_RECHECK_MS = 2_000
/** Channel streams a peer may hold open to this host at once (one, and room to replace it). */
const MAX_INBOUND_CHANNELS = 4

/** A request/response that takes longer is given up (both sides). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000
/** Concurrent inbound requests per connection and protocol. */
export const DEFAULT_MAX_INBOUND_REQUESTS = 64

/** Answers one request; `peer` is the authenticated host id of the requester. */
export type RequestHandler = (request: Uint8Array, peer: string, signal: AbortSignal) => Promise<Uint8Array>

export interface HandleOptions {
  /** Time to read the request, run the handler and write the answer. */
  timeoutMs?: number
  maxRequestBytes?: number
  maxInboundRequests?: number
}

/** An inbound request this host could not answer (the requester saw its stream end without an answer). */
export interface FailedRequestReport {
  protocol: string
  peer: string
  /** Where it failed: reading the request, running the handler, or writing the answer. */
  stage: 'read' | 'handle' | 'answer'
  error: Error
}

export interface RequestOptions {
  signal?: AbortSignal
  timeoutMs?: number
  maxResponseBytes?: number
  /** A stream of its own even when small: for bulk answers that would hold up a channel (image chunks). */
  ownStream?: boolean
}

export class RequestResponse {
  /**
   * The bytes of requests being read, per peer and in all, over every protocol handled here: a
   * request that does not fit is refused (its stream reset) before its bytes are kept.
   */
  readonly budget: ByteBudget
  private readonly served = new Map<string, ServedProtocol>()
  private readonly channels = new Map<string, Promise<OutboundChannel | undefined>>()
  private readonly noChannelUntil = new Map<string, number>()
  private channelsServed = false

  constructor (
    private readonly libp2p: Libp2p,
    private readonly log: (fmt: string, ...args: unknown[]) => void = () => {},
    budget: ByteBudgetInit = {},
    /** Told of every inbound request that ended without an answer (the agent logs it: the requester only sees its stream end). */
    private readonly onFailed: (report: FailedRequestReport) => void = () => {}
  ) {
    this.budget = new ByteBudget(budget)
  }

  async handle (protocol: string, handler: RequestHandler, options: HandleOptions = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    const maxDataLength = options.maxRequestBytes ?? MAX_FRAME_BYTES
    const maxInbound = options.maxInboundRequests ?? DEFAULT_MAX_INBOUND_REQUESTS
    this.served.set(protocol, { handler, timeoutMs, maxInbound, maxRequestBytes: maxDataLength })
    await this.serveChannels()
    await this.libp2p.handle(protocol, async (stream, connection) => {
      const peer = connection.remotePeer.toString()
      const signal = AbortSignal.timeout(timeoutMs)
      let stage: FailedRequestReport['stage'] = 'read'
      try {
        const request = await readBudgetedFrame(stream, { peer, budget: this.budget, maxBytes: maxDataLength, signal })
        try {
          stage = 'handle'
          const response = await handler(request.bytes, peer, signal)
          stage = 'answer'
          await lpStream(stream).write(response, { signal })
          await stream.close({ signal })
        } finally {
          request.release()
        }
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err))
        this.log('%s request from %s failed while %s: %e', protocol, peer, stage, err)
        this.onFailed({ protocol, peer, stage, error: signal.aborted && stage === 'handle' ? new Error(`no answer within ${timeoutMs} ms`, { cause: error }) : error })
        stream.abort(error)
      }
    }, { maxInboundStreams: maxInbound })
  }

  async unhandle (protocol: string): Promise<void> {
    this.served.delete(protocol)
    await this.libp2p.unhandle(protocol)
  }

  /** Closes every channel this host opened (requests in flight on them fail). */
  closeChannels (): void {
    for (const c of this.channels.values()) void c.then((ch) => { ch?.close() })
    this.channels.clear()
  }

  /** Answers channels from the first handler on: a peer sees the protocol (identify) only once something is served. */
  private async serveChannels (): Promise<void> {
    if (this.channelsServed) return
    this.channelsServed = true
    await this.libp2p.handle(CHANNEL_PROTOCOL, (stream, connection) => {
      serveChannel(stream, connection.remotePeer.toString(), {
        served: (protocol) => this.served.get(protocol),
        budget: this.budget,
        onFailed: this.onFailed,
        log: this.log
      })
    }, { maxInboundStreams: MAX_INBOUND_CHANNELS })
  }

  /** Sends `request` to host `peer` and resolves with its answer. Throws RequestTimeoutError,
   * RequestAbortedError or RequestFailedError (dial refused, stream reset, oversized answer). */
  async request (peer: string | PeerId, protocol: string, request: Uint8Array, options: RequestOptions = {}): Promise<Uint8Array> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    const timeout = AbortSignal.timeout(timeoutMs)
    const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout])
    const peerId = typeof peer === 'string' ? peerIdFromString(peer) : peer
    if (request.byteLength <= CHANNEL_MAX_REQUEST_BYTES && options.ownStream !== true) {
      const channel = await this.channelTo(peerId, signal)
      if (channel !== undefined) {
        try {
          return await channel.request(protocol, request, { signal, ...(options.maxResponseBytes !== undefined ? { maxResponseBytes: options.maxResponseBytes } : {}) })
        } catch (err) {
          throw requestError(err, protocol, peerId.toString(), options.signal, timeout, timeoutMs)
        }
      }
    }
    return await this.requestOnStream(peerId, protocol, request, options, { signal, timeout, timeoutMs })
  }

  /**
   * The open channel to a peer, opening one when there is none; undefined when the peer does not
   * serve channels (an older release, not identified yet) or one could not be opened in time.
   */
  private async channelTo (peerId: PeerId, signal: AbortSignal): Promise<OutboundChannel | undefined> {
    const key = peerId.toString()
    let opening = this.channels.get(key)
    if (opening === undefined) {
      if ((this.noChannelUntil.get(key) ?? 0) > Date.now()) return undefined
      // Forgets only this opening: a channel that ends after another replaced it leaves that one.
      const mine: Promise<OutboundChannel | undefined> = this.openChannel(peerId, key, () => { if (this.channels.get(key) === mine) this.channels.delete(key) })
      opening = mine
      this.channels.set(key, mine)
    }
    const channel = await raceSignal(opening, signal).catch(() => undefined)
    return channel?.open === true ? channel : undefined
  }

  private async openChannel (peerId: PeerId, key: string, forget: () => void): Promise<OutboundChannel | undefined> {
    try {
      const record = await this.libp2p.peerStore.get(peerId).catch(() => undefined)
      if (record?.protocols.includes(CHANNEL_PROTOCOL) !== true) {
        this.noChannelUntil.set(key, Date.now() + NO_CHANNEL_RECHECK_MS)
        forget()
        return undefined
      }
      const stream = await this.libp2p.dialProtocol(peerId, CHANNEL_PROTOCOL, { signal: AbortSignal.timeout(CHANNEL_OPEN_TIMEOUT_MS) })
      return new OutboundChannel(stream, forget)
    } catch (err) {
      this.log('opening a request channel to %s failed: %e', key, err)
      forget()
      return undefined
    }
  }

  private async requestOnStream (peerId: PeerId, protocol: string, request: Uint8Array, options: RequestOptions, t: { signal: AbortSignal, timeout: AbortSignal, timeoutMs: number }): Promise<Uint8Array> {
    const { signal, timeout, timeoutMs } = t
    for (let attempt = 1; ; attempt++) {
      let stream: Stream | undefined
      try {
        stream = await this.libp2p.dialProtocol(peerId, protocol, { signal })
        const lp = lpStream(stream, { maxDataLength: options.maxResponseBytes ?? MAX_FRAME_BYTES })
        await lp.write(request, { signal })
        await stream.close({ signal })
        return (await lp.read({ signal })).subarray()
      } catch (err) {
        stream?.abort(err instanceof Error ? err : new Error(String(err)))
        if (options.signal?.aborted === true || timeout.aborted) throw requestError(err, protocol, peerId.toString(), options.signal, timeout, timeoutMs)
        // A connection whose multiplexer has closed while its socket has not is still listed by
        // libp2p, and every dial would reuse it until the socket goes (seconds under load, seen in
        // CI). Drop that connection (only it: others to the peer may be healthy) and dial again,
        // once, with what time is left.
        if (attempt === 1 && stream === undefined && (err as Error).name === 'ConnectionClosedError') {
          for (const c of this.libp2p.getConnections(peerId)) if (!multiplexerOpen(c)) c.abort(err as Error)
          continue
        }
        throw requestError(err, protocol, peerId.toString(), options.signal, timeout, timeoutMs)
      }
    }
  }
}

/** What a request that did not get its answer throws: the caller gave up, the time ran out, or the exchange failed. */
function requestError (err: unknown, protocol: string, who: string, callerSignal: AbortSignal | undefined, timeout: AbortSignal, timeoutMs: number): Error {
  if (callerSignal?.aborted === true) return new RequestAbortedError(protocol, who, callerSignal.reason)
  if (timeout.aborted) return new RequestTimeoutError(protocol, who, timeoutMs)
  return new RequestFailedError(protocol, who, err, peerAnswered(err))
}

/** Whether the failure came from the peer itself: a refusal on the channel, or its "na" to a stream's protocol. */
function peerAnswered (err: unknown): boolean {
  if (err instanceof ChannelRequestError) return err.answered
  return err instanceof Error && err.name === 'UnsupportedProtocolError'
}

/** `p`, or the signal's reason when it aborts first. */
async function raceSignal<T> (p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) throw signal.reason
  let onAbort = (): void => {}
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => { reject(signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([p, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

/** Whether a connection can still open streams: its socket is open and so is its multiplexer (not in libp2p's public interface). */
function multiplexerOpen (c: Connection): boolean {
  const muxer = (c as unknown as { muxer?: { status?: string } }).muxer
  return c.status === 'open' && (muxer?.status === undefined || muxer.status === 'open')
}
