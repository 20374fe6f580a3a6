import { pb, type meshvirt } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'
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

/**
 * Answers the image protocol from this host's store: only what it holds, chunks of partial images
 * included; with `direct`, also opens direct sessions (only over the mesh: `peer` is authenticated).
 */
export function imageServer (store: ImageStore, direct?: (peer: string) => meshvirt.v1.IDirectSession): (request: Uint8Array, peer?: string) => Promise<Uint8Array> {
  return async (bytes, peer) => {
    const answer = (res: meshvirt.v1.IImageResponse): Uint8Array => pb.ImageResponse.encode(res).finish()
    const req = pb.ImageRequest.decode(bytes)
    const img = store.get(req.digest)
    if (req.body === 'manifest') {
      if (img === undefined || !img.have.complete()) return answer({ error: { code: 'NOT_FOUND', message: `this host holds no complete copy of ${req.digest}` } })
      return answer({ manifest: manifestToWire(img.manifest) })
    }
    if (req.body === 'chunk') {
      const chunk = await store.readChunk(req.digest, req.chunk as number)
      if (chunk === undefined) return answer({ error: { code: 'NOT_HELD', message: `this host does not hold chunk ${String(req.chunk)} of ${req.digest}` } })
      return answer({ chunk })
    }
    if (req.body === 'openDirect') {
      if (direct === undefined || peer === undefined) return answer({ error: { code: 'UNAVAILABLE', message: 'no direct sessions here' } })
      try {
        return answer({ direct: direct(peer) })
      } catch (err) {
        return answer({ error: { code: 'UNAVAILABLE', message: (err as Error).message } })
      }
    }
    return answer({ error: { code: 'INVALID_ARGUMENT', message: 'an image request asks for a manifest, a chunk or a direct session' } })
  }
}

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
