import { encodeFrame } from '@meshvirt/proto'
import type { Stream } from '@libp2p/interface'
import { REPLICA_READ_BUFFER_BYTES } from './constants.js'
import { ReplicaError, ReplicaProtocolError, ReplicaTransferError } from './errors.js'

/** Frames queued unread before the stream is paused (yamux then stops granting the sender window). */
export const FRAME_HIGH_WATER_BYTES = 8 * 1024 * 1024

/**
 * Length-prefixed frames (unsigned varint, as lpStream) over a libp2p 3 message stream, with
 * backpressure on the read side. Not lpStream: its byte buffer never pauses the stream and resets it
 * past 4 MiB, so a holder busy writing a point to disk would lose the stream; here a reader that falls
 * behind pauses it, and frames are assembled with one copy each (not a concat per arriving piece).
 */
export class FrameStream {
  private readonly frames: Uint8Array[] = []
  private queued = 0
  private pieces: Uint8Array[] = []
  private pieceBytes = 0
  private ended = false
  private error: Error | undefined
  private wake: (() => void) | undefined

  constructor (private readonly stream: Stream, private readonly maxFrameBytes: number) {
    stream.maxReadBufferLength = REPLICA_READ_BUFFER_BYTES
    stream.addEventListener('message', (evt) => {
      const data = evt.data
      try {
        for (const piece of data instanceof Uint8Array ? [data] : [...data]) this.push(piece)
      } catch (err) {
        this.fail(err instanceof Error ? err : new Error(String(err)))
        stream.abort(this.error as Error)
        return
      }
      if (this.queued > FRAME_HIGH_WATER_BYTES && stream.readStatus === 'readable') stream.pause()
      this.notify()
    })
    stream.addEventListener('remoteCloseWrite', () => { this.ended = true; this.notify() })
    stream.addEventListener('close', (evt) => {
      if (evt.error != null) this.fail(evt.error)
      this.ended = true
      this.notify()
    })
  }

  /** The next frame; throws ReplicaTransferError when the stream ends or breaks first. */
  async read (signal?: AbortSignal): Promise<Uint8Array> {
    for (;;) {
      const frame = this.frames.shift()
      if (frame !== undefined) {
        this.queued -= frame.length
        if (this.queued < FRAME_HIGH_WATER_BYTES / 2 && this.stream.readStatus === 'paused') this.stream.resume()
        return frame
      }
      if (this.error !== undefined) throw this.error
      if (this.ended) throw new ReplicaTransferError('the stream ended before the next message')
      if (signal?.aborted === true) throw new ReplicaTransferError('timed out waiting for the next message', { cause: signal.reason })
      await new Promise<void>((resolve) => {
        const done = (): void => { signal?.removeEventListener('abort', done); this.wake = undefined; resolve() }
        this.wake = done
        signal?.addEventListener('abort', done, { once: true })
      })
    }
  }

  async write (payload: Uint8Array, signal?: AbortSignal): Promise<void> {
    if (this.stream.send(encodeFrame(payload))) return
    await this.stream.onDrain({ signal })
  }

  private push (piece: Uint8Array): void {
    this.pieces.push(piece)
    this.pieceBytes += piece.length
    for (;;) {
      const header = this.peekLength()
      if (header === undefined) return
      const [length, headerBytes] = header
      if (length > this.maxFrameBytes) throw new ReplicaProtocolError(`a frame of ${length} bytes is over the limit of ${this.maxFrameBytes}`)
      if (this.pieceBytes < headerBytes + length) return
      const all = this.take(headerBytes + length)
      this.frames.push(all.subarray(headerBytes))
      this.queued += length
    }
  }

  /** The varint length prefix at the front, once all its bytes are here. */
  private peekLength (): [number, number] | undefined {
    let value = 0
    let scale = 1
    let i = 0
    for (const piece of this.pieces) {
      for (const byte of piece) {
        value += (byte & 0x7f) * scale
        i++
        if ((byte & 0x80) === 0) return [value, i]
        scale *= 0x80
        if (i >= 8) throw new ReplicaProtocolError('varint length prefix longer than 8 bytes')
      }
    }
    return undefined
  }

  /** Remove and return the first `n` bytes (one copy, or none when they lie in one piece). */
  private take (n: number): Uint8Array {
    const first = this.pieces[0] as Uint8Array
    let out: Uint8Array
    if (first.length >= n) {
      out = first.subarray(0, n)
      if (first.length === n) this.pieces.shift(); else this.pieces[0] = first.subarray(n)
    } else {
      out = new Uint8Array(n)
      let at = 0
      while (at < n) {
        const p = this.pieces[0] as Uint8Array
        const k = Math.min(p.length, n - at)
        out.set(p.subarray(0, k), at)
        at += k
        if (k === p.length) this.pieces.shift(); else this.pieces[0] = p.subarray(k)
      }
    }
    this.pieceBytes -= n
    return out
  }

  private fail (err: Error): void {
    this.error ??= err instanceof ReplicaError ? err : new ReplicaTransferError(`replica stream broke: ${err.message}`, { cause: err })
  }

  private notify (): void {
    this.wake?.()
  }
}
