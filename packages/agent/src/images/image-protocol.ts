import { pb, type meshvirt } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'
import { heapMode } from '../heap-mode.js'
import type { BufferPool } from './buffer-pool.js'
import type { ImageStore } from './image-store.js'
import type { ImageFormat, ImageManifest } from './manifest.js'

/** Between hosts: a held image's manifest, or one chunk of it (docs/images.md). */
export const IMAGE_PROTOCOL = '/meshvirt/image/1.0.0'
/** One chunk's round trip; a holder slower than this is asked for other chunks. */
export const CHUNK_TIMEOUT_MS = 30_000
/** Chunk requests a host serves at once per connection. */
export const MAX_INBOUND_CHUNKS = 32

/** A holder's answer that is not the bytes: the chunk is not (yet) there, or the image is unknown. */
export class ImagePeerError extends Error {
  override readonly name = 'ImagePeerError'
  constructor (readonly code: string, message: string) { super(message) }
}

export interface ImageServerOptions {
  /** Opens direct sessions (only over the mesh: `peer` is authenticated). */
  direct?: (peer: string) => meshvirt.v1.IDirectSession
  /** Chunks of a copy here were found damaged when a fetcher had them checked. */
  repair?: (digest: string, damaged: number[], peer?: string) => void
  /** Chunks are read into these buffers (the caller gives each answer back once it is sent). */
  buffers?: BufferPool
}

/**
 * Answers the image protocol from this host's store: only what it holds, chunks of partial images
 * included; checks of chunks it served; direct sessions when it opens them.
 */
export function imageServer (store: ImageStore, opts: ImageServerOptions = {}): (request: Uint8Array, peer?: string) => Promise<Uint8Array> {
  const { direct, repair, buffers } = opts
  return async (bytes, peer) => {
    const answer = (res: meshvirt.v1.IImageResponse): Uint8Array => pb.ImageResponse.encode(res).finish()
    const req = pb.ImageRequest.decode(bytes)
    const img = store.get(req.digest)
    if (req.body === 'manifest') {
      if (img === undefined || !img.have.complete()) return answer({ error: { code: 'NOT_FOUND', message: `this host holds no complete copy of ${req.digest}` } })
      return answer({ manifest: manifestToWire(img.manifest) })
    }
    if (req.body === 'chunk') {
      heapMode.bulkWork()
      const framed = await store.readChunk(req.digest, req.chunk as number, CHUNK_ENVELOPE_ROOM, buffers)
      if (framed === undefined) return answer({ error: { code: 'NOT_HELD', message: `this host does not hold chunk ${String(req.chunk)} of ${req.digest}` } })
      return chunkAnswer(framed, CHUNK_ENVELOPE_ROOM)
    }
    if (req.body === 'openDirect') {
      if (direct === undefined || peer === undefined) return answer({ error: { code: 'UNAVAILABLE', message: 'no direct sessions here' } })
      try {
        return answer({ direct: direct(peer) })
      } catch (err) {
        return answer({ error: { code: 'UNAVAILABLE', message: (err as Error).message } })
      }
    }
    if (req.body === 'checkChunk') {
      // The asker's word is not taken: the chunk is hashed here, and only a mismatch changes anything.
      const chunk = req.checkChunk as number
      const damaged = await store.checkChunks(req.digest, [chunk])
      if (damaged.length > 0) repair?.(req.digest, damaged, peer)
      // Found damaged now, or by an earlier check (it is no longer held here): the copy was wrong.
      return answer({ checked: { damaged: damaged.length > 0 || store.get(req.digest)?.have.has(chunk) === false } })
    }
    return answer({ error: { code: 'INVALID_ARGUMENT', message: 'an image request asks for a manifest, a chunk, a chunk check or a direct session' } })
  }
}

/** Room for an ImageResponse's envelope around a chunk: a tag and a length varint (≤ 5 bytes). */
export const CHUNK_ENVELOPE_ROOM = 6

/**
 * `ImageResponse { chunk }`, encoded in place: the chunk's bytes lie at `room` in `buf`, read there
 * from disk; the field's tag and length go just before them. The same bytes as
 * `ImageResponse.encode({ chunk })`, without copying the MiB into a new buffer.
 */
export function chunkAnswer (buf: Uint8Array, room: number): Uint8Array {
  const head = [CHUNK_FIELD_TAG]
  // The length as a protobuf varint: 7 bits a byte, low first, the high bit saying more follow.
  for (let n = buf.length - room; ; n = Math.floor(n / 128)) {
    if (n < 128) { head.push(n); break }
    head.push((n % 128) | 128)
  }
  if (head.length > room) throw new RangeError(`a chunk's envelope needs ${head.length} bytes; ${room} were left`)
  buf.set(head, room - head.length)
  return buf.subarray(room - head.length)
}

/** `bytes chunk = 2` of ImageResponse: field 2, wire type 2 (length-delimited). */
const CHUNK_FIELD_TAG = (2 << 3) | 2

export function manifestToWire (m: ImageManifest): meshvirt.v1.IImageManifest {
  return { digest: m.digest, sizeBytes: m.sizeBytes, format: m.format, chunkBytes: m.chunkBytes, chunks: m.chunks }
}

export function manifestFromWire (w: meshvirt.v1.IImageManifest): ImageManifest {
  return { digest: w.digest ?? '', sizeBytes: Number(w.sizeBytes ?? 0), format: (w.format ?? '') as ImageFormat, chunkBytes: w.chunkBytes ?? 0, chunks: [...w.chunks ?? []] }
}

/** The caller's side: decodes an answer, throwing ImagePeerError for a refusal. */
export function decodeImageResponse (bytes: Uint8Array): meshvirt.v1.ImageResponse {
  const res = pb.ImageResponse.decode(bytes)
  if (res.body === 'error') throw new ImagePeerError(res.error?.code ?? 'INTERNAL', res.error?.message ?? 'unknown error')
  if (res.body === undefined) throw new ControlError('INTERNAL', 'an empty image answer')
  return res
}
