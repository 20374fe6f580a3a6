import { rm } from 'node:fs/promises'
import { heapMode } from '../heap-mode.js'
import { join } from 'node:path'
import type { Libp2p, Stream } from '@libp2p/interface'
import { MAX_REPLICA_FRAME_BYTES, MAX_REPLICA_STREAMS, REPLICA_IDLE_TIMEOUT_MS, REPLICA_PROTOCOL } from './constants.js'
import { ReplicaError } from './errors.js'
import { FrameStream } from './frame-stream.js'
import type { BaseImages } from './base-images.js'
import { HolderReplica } from './holder-replica.js'
import { emptyPosition } from './position.js'
import { decodeReplicaMessage, encodeReplicaMessage } from './replica-codec.js'
import type { OfferAnswer, ReplicaMessage, ReplicaPointHeader, ReplicaPosition } from './types.js'

export interface AppliedEvent {
  vmId: string
  /** Host id of the sender. */
  peer: string
  position: ReplicaPosition
  header: ReplicaPointHeader
  applyMs: number
}

export interface ReplicaHolderServiceInit {
  /** Where replicas live: `<root>/<vm id>/`. */
  root: string
  /**
   * Whether `peer` may ship points of `vmId` here (the agent: this host agreed to hold the VM for
   * that owner). Default: accept. An epoch older than the replica's is refused regardless.
   */
  accept?: (vmId: string, peer: string) => boolean | Promise<boolean>
  onApplied?: (event: AppliedEvent) => void
  /** The library images full points may be layers on (the agent's image library); without, such points are refused. */
  bases?: BaseImages
  idleTimeoutMs?: number
  log?: (message: string, fields: Record<string, unknown>) => void
}

interface Session {
  stream: Stream
  done: Promise<void>
}

/**
 * The holder side of `/meshvirt/replica/1.0.0`: answers offers with its position, receives points into
 * each VM's HolderReplica and answers ReplicaApplied once a point is applied. One session per VM at a
 * time: a new stream for a VM cuts the previous one (its sender is gone or gave up: a sender that
 * reconnects after a disconnect must not wait for the old stream to time out).
 */
export class ReplicaHolderService {
  private readonly replicas = new Map<string, Promise<HolderReplica>>()
  private readonly sessions = new Map<string, Session>()
  /** Every stream being served, claimed or not yet (still at its offer, or at `accept`). */
  private readonly serving = new Map<Stream, Promise<void>>()
  private stopped = false
  private readonly log: (message: string, fields: Record<string, unknown>) => void

  constructor (private readonly libp2p: Libp2p, private readonly init: ReplicaHolderServiceInit) {
    this.log = init.log ?? (() => {})
  }

  async start (): Promise<void> {
    this.stopped = false
    await this.libp2p.handle(REPLICA_PROTOCOL, async (stream, connection) => {
      if (this.stopped) { stream.abort(new Error('replica holder stopping')); return }
      const served = this.serve(stream, connection.remotePeer.toString())
      this.serving.set(stream, served)
      try { await served } finally { this.serving.delete(stream) }
    }, { maxInboundStreams: MAX_REPLICA_STREAMS })
  }

  /**
   * Stop taking points, cut every stream and wait until none of them touches the disk any more: once
   * this resolves nothing under `root` is written by this service (the data dir may be removed).
   */
  async stop (): Promise<void> {
    this.stopped = true
    await this.libp2p.unhandle(REPLICA_PROTOCOL)
    for (const stream of this.serving.keys()) stream.abort(new Error('replica holder stopping'))
    // Every session belongs to a stream being served, and ends before its serve does.
    await Promise.allSettled(this.serving.values())
    for (const r of await Promise.allSettled(this.replicas.values())) if (r.status === 'fulfilled') await r.value.close()
    this.replicas.clear()
  }

  /** The replica of `vmId` on this host (opened, with any pending journal applied). */
  async replica (vmId: string): Promise<HolderReplica> {
    this.refuseWhenStopped(`VM ${vmId}'s replica cannot be opened now; ask again once the agent is back`)
    let r = this.replicas.get(vmId)
    if (r === undefined) {
      r = HolderReplica.open(join(this.init.root, vmId), vmId, this.init.bases)
      this.replicas.set(vmId, r)
      r.catch(() => { this.replicas.delete(vmId) })
    }
    return await r
  }

  /** Delete the replica of `vmId` (the VM was deleted, or this host no longer holds it). */
  async removeReplica (vmId: string): Promise<void> {
    this.refuseWhenStopped(`VM ${vmId}'s replica is removed by the next orphan sweep`)
    const session = this.sessions.get(vmId)
    session?.stream.abort(new Error(`replica of VM ${vmId} removed`))
    await session?.done
    const replica = this.replicas.get(vmId)
    this.replicas.delete(vmId)
    await (await replica?.catch(() => undefined))?.close()
    await rm(join(this.init.root, vmId), { recursive: true, force: true })
  }

  private async serve (stream: Stream, peer: string): Promise<void> {
    const idle = this.init.idleTimeoutMs ?? REPLICA_IDLE_TIMEOUT_MS
    const frames = new FrameStream(stream, MAX_REPLICA_FRAME_BYTES)
    const send = async (m: ReplicaMessage): Promise<void> => { await frames.write(encodeReplicaMessage(m), AbortSignal.timeout(idle)) }
    let raw: Uint8Array = new Uint8Array(0)
    const receive = async (): Promise<ReplicaMessage> => { raw = await frames.read(AbortSignal.timeout(idle)); return decodeReplicaMessage(raw) }
    let vmId: string | undefined
    let release: (() => void) | undefined
    try {
      const first = await receive()
      if (first.type !== 'offer') throw new ReplicaError('ERR_REPLICA_PROTOCOL', `a replica stream opens with an offer, not ${first.type}`)
      vmId = first.vmId
      if (this.init.accept !== undefined && !await this.init.accept(vmId, peer)) {
        await send({ type: 'position', answer: { position: emptyPosition(vmId), receivedChunks: 0, refusal: 'unknown-vm', detail: 'this host does not hold that VM for you' } })
        await stream.close()
        return
      }
      this.refuseWhenStopped('no point is taken')
      release = await this.claim(vmId, stream)
      const replica = await this.replica(vmId)
      if (first.point === undefined) {
        await send({ type: 'position', answer: { position: replica.position, receivedChunks: 0 } })
        await stream.close()
        return
      }
      const header = first.point
      const answer: OfferAnswer = await replica.offer(header)
      await send({ type: 'position', answer })
      if (answer.refusal !== undefined) { await stream.close(); return }
      for (;;) {
        const m = await receive()
        if (m.type === 'chunk') { heapMode.bulkWork(); await replica.receive(m.chunk, raw); continue }
        if (m.type !== 'end') throw new ReplicaError('ERR_REPLICA_PROTOCOL', `unexpected ${m.type} inside a point`)
        let result
        try {
          result = await replica.finish(m.digest)
        } catch (err) {
          if ((err as { code?: string }).code !== 'ERR_REPLICA_CHECKSUM') throw err
          await send({ type: 'applied', answer: { position: replica.position, receivedChunks: 0, refusal: 'invalid', detail: (err as Error).message }, applyMs: 0 })
          await stream.close()
          return
        }
        await send({ type: 'applied', answer: result.answer, applyMs: result.applyMs })
        this.log('replica point applied', { vm: vmId, peer, epoch: header.epoch, seq: header.seq, kind: header.kind, bytes: header.dataBytes, applyMs: Math.round(result.applyMs) })
        this.init.onApplied?.({ vmId, peer, position: result.answer.position, header, applyMs: result.applyMs })
        await stream.close()
        return
      }
    } catch (err) {
      this.log('replica stream failed', { vm: vmId, peer, error: err instanceof Error ? err.message : String(err) })
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      release?.()
    }
  }

  private refuseWhenStopped (consequence: string): void {
    if (this.stopped) throw new ReplicaError('ERR_REPLICA_STOPPED', `the replica holder is stopping: ${consequence}`)
  }

  /** Become the one session of `vmId`, cutting (and waiting out) the one before. */
  private async claim (vmId: string, stream: Stream): Promise<() => void> {
    const previous = this.sessions.get(vmId)
    let finish = (): void => {}
    const session: Session = { stream, done: new Promise<void>((resolve) => { finish = resolve }) }
    this.sessions.set(vmId, session)
    if (previous !== undefined) {
      previous.stream.abort(new Error('superseded by a newer replica stream'))
      await previous.done
    }
    return () => {
      if (this.sessions.get(vmId) === session) this.sessions.delete(vmId)
      finish()
    }
  }
}
