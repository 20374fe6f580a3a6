import { createHash } from 'node:crypto'
import type { ReplicaExtent, ReplicaPointHeader } from './types.js'

/**
 * Checksums of the replica stream. A chunk's sha256 covers its extent list as well as its bytes, so
 * data written to the wrong place is caught like damaged data. The point digest covers the header and
 * every chunk digest in order (a hash list): the holder checks the whole point without hashing its
 * bytes twice, and a sender resuming at chunk k needs only the digests of chunks 0..k-1.
 * Encodings are fixed-width big-endian so that both sides hash the same bytes whatever their code.
 */
export function chunkDigest (index: number, extents: readonly ReplicaExtent[], data: Uint8Array): Uint8Array {
  const h = createHash('sha256')
  h.update(u64(index))
  h.update(u64(extents.length))
  for (const e of extents) {
    h.update(str(e.disk))
    h.update(u64(e.offset))
    h.update(u64(e.length))
    h.update(Uint8Array.of(e.zero ? 1 : 0))
  }
  h.update(u64(data.length))
  h.update(data)
  return h.digest()
}

export function pointDigest (header: ReplicaPointHeader, chunkDigests: readonly Uint8Array[]): Uint8Array {
  const h = createHash('sha256')
  h.update(str(header.vmId))
  for (const n of [header.epoch, header.seq, header.baseSeq, header.kind === 'full' ? 1 : 2, header.takenAt, header.chunkCount, header.dataBytes]) h.update(u64(n))
  h.update(u64(header.disks.length))
  for (const d of header.disks) {
    h.update(str(d.name))
    h.update(u64(d.sizeBytes))
    // Only when set, so points without a base hash as they always did.
    if (d.baseDigest !== undefined) h.update(str(`base:${d.baseDigest}`))
  }
  h.update(u64(chunkDigests.length))
  for (const d of chunkDigests) h.update(d)
  return h.digest()
}

export function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0
}

export function hex (bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex')
}

function u64 (n: number): Uint8Array {
  const b = Buffer.alloc(8)
  b.writeBigUInt64BE(BigInt(n))
  return b
}

function str (s: string): Uint8Array {
  const bytes = Buffer.from(s, 'utf8')
  return Buffer.concat([u64(bytes.length), bytes])
}
