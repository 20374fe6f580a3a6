/**
 * One request, one response, one stream: the requester writes a length-prefixed frame and
 * closes its write side, the handler answers with one frame and closes. Opening a stream
 * costs ~1–2 ms here, which request/response protocols (control, negotiate) can afford; a
 * long-lived stream per peer is for the latency-critical ones.
 */
import { MAX_FRAME_BYTES } from '@meshvirt/proto'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { readBudgetedFrame } from './budgeted-frame.js'
import { ByteBudget, type ByteBudgetInit } from './byte-budget.js'
import { RequestAbortedError, RequestFailedError, RequestTimeoutError } from './errors.js'

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
}

export class RequestResponse {
  /**
   * The bytes of requests being read, per peer and in all, over every protocol handled here: a
   * request that does not fit is refused (its stream reset) before its bytes are kept.
   */
  readonly budget: ByteBudget

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
    }, { maxInboundStreams: options.maxInboundRequests ?? DEFAULT_MAX_INBOUND_REQUESTS })
  }

  async unhandle (protocol: string): Promise<void> {
    await this.libp2p.unhandle(protocol)
  }

  /** Sends `request` to host `peer` and resolves with its answer. Throws RequestTimeoutError,
   * RequestAbortedError or RequestFailedError (dial refused, stream reset, oversized answer). */
  async request (peer: string | PeerId, protocol: string, request: Uint8Array, options: RequestOptions = {}): Promise<Uint8Array> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    const timeout = AbortSignal.timeout(timeoutMs)
    const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout])
    const peerId = typeof peer === 'string' ? peerIdFromString(peer) : peer
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
        const who = peerId.toString()
        if (options.signal?.aborted === true) throw new RequestAbortedError(protocol, who, options.signal.reason)
        if (timeout.aborted) throw new RequestTimeoutError(protocol, who, timeoutMs)
        // A connection whose multiplexer has closed while its socket has not is still listed by
        // libp2p, and every dial would reuse it until the socket goes (seconds under load, seen in
        // CI). Drop that connection (only it: others to the peer may be healthy) and dial again,
        // once, with what time is left.
        if (attempt === 1 && stream === undefined && (err as Error).name === 'ConnectionClosedError') {
          for (const c of this.libp2p.getConnections(peerId)) if (!multiplexerOpen(c)) c.abort(err as Error)
          continue
        }
        throw new RequestFailedError(protocol, who, err)
      }
    }
  }
}

/** Whether a connection can still open streams: its socket is open and so is its multiplexer (not in libp2p's public interface). */
function multiplexerOpen (c: Connection): boolean {
  const muxer = (c as unknown as { muxer?: { status?: string } }).muxer
  return c.status === 'open' && (muxer?.status === undefined || muxer.status === 'open')
}
