import { peerIdFromString } from '@libp2p/peer-id'
import { heapMode } from '../heap-mode.js'
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import { pipe } from 'it-pipe'
import { APPLY_TIMEOUT_MS, MAX_REPLICA_FRAME_BYTES, MAX_REPLICA_STREAMS, REPLICA_IDLE_TIMEOUT_MS, REPLICA_PROTOCOL } from './constants.js'
import { ChecksumMismatchError, ReplicaError, ReplicaProtocolError, ReplicaRefusedError, ReplicaTransferError } from './errors.js'
import type { OutgoingPoint } from './outgoing-point.js'
import { FrameStream } from './frame-stream.js'
import { decodeReplicaMessage, encodeReplicaMessage } from './replica-codec.js'
import type { TokenBucket } from './token-bucket.js'
import type { OfferAnswer, ReplicaChunk, ReplicaMessage } from './types.js'
import type { ChunkPlan } from './chunk-plan.js'

export interface ShipOptions {
  /** The holder's bandwidth bound (share one per holder). Unbounded without. */
  bucket?: TokenBucket
  signal?: AbortSignal
  idleTimeoutMs?: number
  applyTimeoutMs?: number
  /** After each chunk handed to the stream: its index and the point's chunk count. */
  onChunk?: (index: number, count: number) => void
}

export interface ShipResult {
  vmId: string
  seq: number
  /** The holder already had this point (or a newer one): nothing was sent. */
  skipped: boolean
  /** Chunks the holder had from an earlier, interrupted attempt. */
  resumedFrom: number
  sentChunks: number
  sentBytes: number
  /** Offer to ReplicaApplied, ms. */
  durationMs: number
  /** The holder's verify + apply time, ms. */
  applyMs: number
  /** The holder's position after the point. */
  answer: OfferAnswer
  /** When the holder's ack arrived, epoch ms on this (the owner's) clock. */
  ackedAt: number
}

/**
 * Ships one point to one holder over `/meshvirt/replica/1.0.0`: offer, learn how much of it the holder
 * already has, send the rest as checksummed chunks (read → checksum → bandwidth bound → stream, an
 * it-pipe pipeline), end with the point digest, and wait until the holder applied it. A broken stream
 * throws ReplicaTransferError: offer the same OutgoingPoint again and it resumes where the holder is.
 * A refusal throws ReplicaRefusedError (a gap: send the missing points first, or a full one).
 * Trap: more than 10 streams opened at once on a connection the holder has not finished setting up
 * make libp2p abort the whole connection (MaxEarlyStreamsError): start a burst of VMs to a new holder
 * after one exchange (queryReplicaPosition), or retry on ReplicaTransferError.
 */
export async function shipPoint (libp2p: Libp2p, peer: string | PeerId, point: OutgoingPoint, options: ShipOptions = {}): Promise<ShipResult> {
  const t0 = performance.now()
  const { header } = point
  return await withStream(libp2p, peer, options, async (send, receive) => {
    await send({ type: 'offer', vmId: header.vmId, point: header })
    const offered = await receive('position', options.idleTimeoutMs ?? REPLICA_IDLE_TIMEOUT_MS)
    const answer = offered.answer
    const base = { vmId: header.vmId, seq: header.seq, resumedFrom: 0, sentChunks: 0, sentBytes: 0, applyMs: 0, answer }
    if (answer.refusal === 'already-applied') return { ...base, skipped: true, durationMs: performance.now() - t0, ackedAt: Date.now() }
    if (answer.refusal !== undefined) throw new ReplicaRefusedError(answer.refusal, answer, `holder refused point ${header.epoch}/${header.seq} of VM ${header.vmId}: ${answer.refusal}${answer.detail !== undefined ? ` (${answer.detail})` : ''}`)
    const from = answer.receivedChunks
    let sentChunks = 0
    let sentBytes = 0
    await point.digestsUpTo(from)
    await pipe(
      point.plans.slice(from),
      async function * read (plans: AsyncIterable<ChunkPlan> | Iterable<ChunkPlan>) { for await (const plan of plans) yield await point.chunk(plan) },
      async function * throttle (chunks: AsyncIterable<ReplicaChunk>) {
        for await (const chunk of chunks) { await options.bucket?.take(chunk.data.length, options.signal); yield chunk }
      },
      async (chunks: AsyncIterable<ReplicaChunk>) => {
        for await (const chunk of chunks) {
          heapMode.bulkWork()
          await send({ type: 'chunk', chunk })
          sentChunks++
          sentBytes += chunk.data.length
          options.onChunk?.(chunk.index, header.chunkCount)
        }
      }
    )
    await send({ type: 'end', digest: point.digest() })
    const applied = await receive('applied', options.applyTimeoutMs ?? APPLY_TIMEOUT_MS)
    if (applied.answer.refusal !== undefined) {
      if (applied.answer.refusal === 'invalid') throw new ChecksumMismatchError(`holder rejected point ${header.epoch}/${header.seq} of VM ${header.vmId}: ${applied.answer.detail ?? 'invalid'}; offer it again (it restarts from zero)`)
      throw new ReplicaRefusedError(applied.answer.refusal, applied.answer, `holder did not apply point ${header.seq} of VM ${header.vmId}: ${applied.answer.refusal}`)
    }
    return { ...base, answer: applied.answer, skipped: false, resumedFrom: from, sentChunks, sentBytes, applyMs: applied.applyMs, durationMs: performance.now() - t0, ackedAt: Date.now() }
  })
}

/** Asks a holder where it is for `vmId` (the point it exposes), without offering anything. */
export async function queryReplicaPosition (libp2p: Libp2p, peer: string | PeerId, vmId: string, options: ShipOptions = {}): Promise<OfferAnswer> {
  return await withStream(libp2p, peer, options, async (send, receive) => {
    await send({ type: 'offer', vmId })
    return (await receive('position', options.idleTimeoutMs ?? REPLICA_IDLE_TIMEOUT_MS)).answer
  })
}

type Send = (m: ReplicaMessage) => Promise<void>
type Receive = <T extends ReplicaMessage['type']>(type: T, timeoutMs: number) => Promise<Extract<ReplicaMessage, { type: T }>>

async function withStream<T> (libp2p: Libp2p, peer: string | PeerId, options: ShipOptions, fn: (send: Send, receive: Receive) => Promise<T>): Promise<T> {
  const peerId = typeof peer === 'string' ? peerIdFromString(peer) : peer
  let stream: Stream | undefined
  try {
    stream = await libp2p.dialProtocol(peerId, REPLICA_PROTOCOL, { signal: withTimeout(options.signal, options.idleTimeoutMs ?? REPLICA_IDLE_TIMEOUT_MS), maxOutboundStreams: MAX_REPLICA_STREAMS })
    const frames = new FrameStream(stream, MAX_REPLICA_FRAME_BYTES)
    const send: Send = async (m) => { await frames.write(encodeReplicaMessage(m), withTimeout(options.signal, options.idleTimeoutMs ?? REPLICA_IDLE_TIMEOUT_MS)) }
    const receive: Receive = async (type, timeoutMs) => {
      const m = decodeReplicaMessage(await frames.read(withTimeout(options.signal, timeoutMs)))
      if (m.type !== type) throw new ReplicaProtocolError(`expected ${type} from the holder, got ${m.type}`)
      return m as Extract<ReplicaMessage, { type: typeof type }>
    }
    const result = await fn(send, receive)
    await stream.close().catch(() => {})
    return result
  } catch (err) {
    stream?.abort(err instanceof Error ? err : new Error(String(err)))
    if (err instanceof ReplicaError && err.code !== ReplicaTransferError.code) throw err
    throw new ReplicaTransferError(`replica stream to ${peerId.toString()} broke: ${err instanceof Error ? err.message : String(err)}; offer the point again to resume`, { cause: err })
  }
}

function withTimeout (signal: AbortSignal | undefined, ms: number): AbortSignal {
  const timeout = AbortSignal.timeout(ms)
  return signal === undefined ? timeout : AbortSignal.any([signal, timeout])
}
