/**
 * Reads one length-prefixed frame (unsigned varint length, then the bytes) from an inbound stream
 * with its bytes charged to a ByteBudget: the declared length is taken from the peer's share and
 * the total as soon as the prefix is read, so a frame that does not fit is refused before its bytes
 * are kept, and a frame parked unfinished holds at most what it was given. The caller gives the
 * bytes back (`release`) once it is done with the frame; a stream that errors, closes early or is
 * aborted (the peer left: its connection's streams are) gives them back at once.
 */
import type { Stream } from '@libp2p/interface'
import type { ByteBudget } from './byte-budget.js'
import { BadFrameError, MessageTooLargeError, RequestOverBudgetError } from './errors.js'

/** A uint64 varint is at most 10 bytes; lengths here are far below 2^53. */
const MAX_PREFIX_BYTES = 10

export interface BudgetedFrame {
  bytes: Uint8Array
  /** Gives the frame's bytes back to the budget (idempotent). */
  release: () => void
}

export interface ReadBudgetedFrameOptions {
  peer: string
  budget: ByteBudget
  maxBytes: number
  signal: AbortSignal
}

/** Decodes a varint prefix: [value, prefix length], or undefined when more bytes are needed. */
export function decodeLengthPrefix (buf: Uint8Array): [number, number] | undefined {
  let value = 0
  for (let i = 0; i < Math.min(buf.byteLength, MAX_PREFIX_BYTES); i++) {
    const b = buf[i] as number
    value += (b & 0x7f) * 2 ** (7 * i)
    if ((b & 0x80) === 0) {
      if (!Number.isSafeInteger(value)) throw new BadFrameError('length beyond 2^53')
      return [value, i + 1]
    }
  }
  if (buf.byteLength >= MAX_PREFIX_BYTES) throw new BadFrameError(`no length within ${MAX_PREFIX_BYTES} bytes`)
  return undefined
}

export async function readBudgetedFrame (stream: Stream, o: ReadBudgetedFrameOptions): Promise<BudgetedFrame> {
  /** Bytes before the prefix is whole (at most a chunk), then the frame, allocated once it is charged. */
  let head = new Uint8Array(0)
  let body: Uint8Array | undefined
  let filled = 0
  let taken = 0
  const release = (): void => {
    if (taken > 0) o.budget.give(o.peer, taken)
    taken = 0
  }
  let resolve: (bytes: Uint8Array) => void = () => {}
  let reject: (err: unknown) => void = () => {}
  const settled = new Promise<Uint8Array>((_resolve, _reject) => { resolve = _resolve; reject = _reject })
  const done = { promise: settled, resolve: (b: Uint8Array) => { resolve(b) }, reject: (e: unknown) => { reject(e) } }
  const fail = (err: unknown): void => {
    head = new Uint8Array(0)
    body = undefined
    done.reject(err)
  }
  const onMessage = (evt: { data: Uint8Array | { subarray: () => Uint8Array } }): void => {
    try {
      let chunk = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
      if (body === undefined) {
        const joined = new Uint8Array(head.byteLength + chunk.byteLength)
        joined.set(head)
        joined.set(chunk, head.byteLength)
        const prefix = decodeLengthPrefix(joined)
        if (prefix === undefined) { head = joined; return }
        const [length, size] = prefix
        if (length > o.maxBytes) throw new MessageTooLargeError(length, o.maxBytes)
        const answer = o.budget.take(o.peer, length)
        if (answer !== 'ok') throw new RequestOverBudgetError(o.peer, length, answer, answer === 'peer' ? o.budget.perPeerBytes : o.budget.totalBytes)
        taken = length
        body = new Uint8Array(length)
        head = new Uint8Array(0)
        chunk = joined.subarray(size)
      }
      if (filled + chunk.byteLength > body.byteLength) throw new BadFrameError(`${filled + chunk.byteLength - body.byteLength} bytes past the frame`)
      body.set(chunk, filled)
      filled += chunk.byteLength
      if (filled === body.byteLength) done.resolve(body)
    } catch (err) {
      fail(err)
    }
  }
  const onEnd = (evt: Event & { error?: Error }): void => { fail(evt.error ?? new BadFrameError(`stream ended ${filled} bytes into the frame`)) }
  const onAbort = (): void => { fail(o.signal.reason) }
  stream.addEventListener('message', onMessage)
  stream.addEventListener('close', onEnd)
  stream.addEventListener('remoteCloseWrite', onEnd)
  o.signal.addEventListener('abort', onAbort)
  try {
    if (o.signal.aborted) onAbort()
    return { bytes: await done.promise, release }
  } catch (err) {
    release()
    throw err
  } finally {
    stream.removeEventListener('message', onMessage)
    stream.removeEventListener('close', onEnd)
    stream.removeEventListener('remoteCloseWrite', onEnd)
    o.signal.removeEventListener('abort', onAbort)
  }
}
