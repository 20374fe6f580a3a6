/**
 * Length-prefixed framing (unsigned LEB128 varint length, then the bytes), the same framing
 * libp2p's `lpStream` uses, as pure functions over byte chunks so they can be tested without
 * sockets and used on any transport (libp2p streams, the agent's unix control socket).
 */

/** Frames larger than this are refused before any allocation (a peer cannot make us buffer 4 GiB). */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024

export class FrameTooLargeError extends Error {
  override readonly name = 'FrameTooLargeError'
  readonly code = 'FRAME_TOO_LARGE'
  constructor (readonly size: number, readonly limit: number) {
    super(`frame of ${size} bytes exceeds the limit of ${limit} bytes`)
  }
}

export class InvalidFrameError extends Error {
  override readonly name = 'InvalidFrameError'
  readonly code = 'INVALID_FRAME'
}

export function encodeVarint (value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidFrameError(`cannot encode varint ${value}`)
  const out: number[] = []
  let v = value
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80)
    v = Math.floor(v / 0x80)
  }
  out.push(v)
  return Uint8Array.from(out)
}

/** Prefixes `payload` with its length. */
export function encodeFrame (payload: Uint8Array): Uint8Array {
  const prefix = encodeVarint(payload.length)
  const frame = new Uint8Array(prefix.length + payload.length)
  frame.set(prefix, 0)
  frame.set(payload, prefix.length)
  return frame
}

/**
 * Incremental decoder: push chunks as they arrive, take the complete frames out.
 * Throws FrameTooLargeError as soon as a prefix announces an oversized frame.
 */
export class FrameDecoder {
  private buffer: Uint8Array = new Uint8Array(0)
  constructor (private readonly maxFrameBytes = MAX_FRAME_BYTES) {}

  push (chunk: Uint8Array): Uint8Array[] {
    this.buffer = concat(this.buffer, chunk)
    const frames: Uint8Array[] = []
    for (;;) {
      const header = readVarint(this.buffer)
      if (header === undefined) break
      const [length, headerBytes] = header
      if (length > this.maxFrameBytes) throw new FrameTooLargeError(length, this.maxFrameBytes)
      if (this.buffer.length < headerBytes + length) break
      frames.push(this.buffer.slice(headerBytes, headerBytes + length))
      this.buffer = this.buffer.subarray(headerBytes + length)
    }
    return frames
  }

  /** Bytes received that do not yet form a complete frame. */
  get pending (): number {
    return this.buffer.length
  }
}

/** Splits an async byte stream into frames. */
export async function * decodeFrames (source: AsyncIterable<Uint8Array | { subarray: () => Uint8Array }>, maxFrameBytes = MAX_FRAME_BYTES): AsyncGenerator<Uint8Array> {
  const decoder = new FrameDecoder(maxFrameBytes)
  for await (const chunk of source) {
    const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray()
    yield * decoder.push(bytes)
  }
  if (decoder.pending > 0) throw new InvalidFrameError(`stream ended inside a frame (${decoder.pending} bytes pending)`)
}

function readVarint (buf: Uint8Array): [number, number] | undefined {
  let value = 0
  let scale = 1
  for (let i = 0; i < buf.length; i++) {
    const byte = buf[i] as number
    value += (byte & 0x7f) * scale
    if ((byte & 0x80) === 0) return [value, i + 1]
    scale *= 0x80
    if (i >= 7) throw new InvalidFrameError('varint length prefix longer than 8 bytes')
  }
  return undefined
}

function concat (a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b
  const out = new Uint8Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}
