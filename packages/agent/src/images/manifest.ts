import { createHash } from 'node:crypto'
import { IMAGE_DIGEST } from './image-ref.js'

/**
 * The chunk size: a chunk travels as one answer of the image protocol (frames stop at 4 MiB), is
 * verified alone, and is the unit a fetcher asks a holder for. 1 MiB: a 1 GiB image is 1,024 chunks,
 * a 128-byte have-bitmap in gossip.
 */
export const CHUNK_BYTES = 1024 * 1024
/** Largest image the library takes: 64 Ki chunks (the gossip's have-bitmap bound). */
export const MAX_CHUNKS = 65_536

export const IMAGE_FORMATS = ['qcow2', 'raw'] as const
export type ImageFormat = typeof IMAGE_FORMATS[number]

/** An image's bytes in fixed-size chunks, each with its SHA-256: what a fetcher verifies every chunk against. */
export interface ImageManifest {
  /** `sha256:<hex>` of the whole image. */
  digest: string
  sizeBytes: number
  format: ImageFormat
  chunkBytes: number
  /** Hex SHA-256 of each chunk, in order. */
  chunks: string[]
}

export function chunkCount (sizeBytes: number, chunkBytes = CHUNK_BYTES): number {
  return Math.max(1, Math.ceil(sizeBytes / chunkBytes))
}

/** Where chunk `i` lies in the image. */
export function chunkSpan (m: Pick<ImageManifest, 'sizeBytes' | 'chunkBytes'>, i: number): { offset: number, length: number } {
  const offset = i * m.chunkBytes
  return { offset, length: Math.max(0, Math.min(m.chunkBytes, m.sizeBytes - offset)) }
}

export function sha256Hex (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** Whether `bytes` have the place and length of chunk `i` (its hash not looked at). */
function chunkFits (m: ImageManifest, i: number, bytes: Uint8Array): boolean {
  return i >= 0 && i < m.chunks.length && bytes.length === chunkSpan(m, i).length
}

/**
 * Whether `bytes` are chunk `i` of the image. On the event loop (0.6 ms a MiB here): WebCrypto's
 * digest on libuv's pool cost the loop more — ~1.1 ms a MiB copying the input and settling the
 * job — and fetches were 10 % slower with it (docs/benchmarks.md).
 */
export function chunkMatches (m: ImageManifest, i: number, bytes: Uint8Array): boolean {
  return chunkFits(m, i, bytes) && sha256Hex(bytes) === m.chunks[i]
}

/**
 * Why a manifest received from a peer cannot be the image `digest` (undefined: it can). The whole
 * image's digest is checked once every chunk is in; this catches what is visibly wrong before.
 */
export function manifestProblem (m: ImageManifest, digest: string): string | undefined {
  if (m.digest !== digest) return `it describes ${m.digest}, not ${digest}`
  if (!IMAGE_DIGEST.test(m.digest)) return 'its digest is malformed'
  if (!(IMAGE_FORMATS as readonly string[]).includes(m.format)) return `its format '${m.format}' is neither qcow2 nor raw`
  if (m.chunkBytes < 4096 || m.chunkBytes > 4 * 1024 * 1024) return `its chunk size ${m.chunkBytes} is outside 4 KiB..4 MiB`
  if (!Number.isSafeInteger(m.sizeBytes) || m.sizeBytes <= 0) return `its size ${m.sizeBytes} is not a positive size`
  if (m.chunks.length !== chunkCount(m.sizeBytes, m.chunkBytes)) return `it has ${m.chunks.length} chunks where ${m.sizeBytes} bytes make ${chunkCount(m.sizeBytes, m.chunkBytes)}`
  if (m.chunks.length > MAX_CHUNKS) return `it has ${m.chunks.length} chunks (at most ${MAX_CHUNKS})`
  if (m.chunks.some((c) => !/^[0-9a-f]{64}$/.test(c))) return 'a chunk digest is malformed'
  return undefined
}
