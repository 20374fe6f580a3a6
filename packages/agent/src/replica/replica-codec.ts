/**
 * Wire ↔ domain for `/meshvirt/replica/1.0.0`. Every decoded message is validated (ids, integer
 * ranges, sizes, digest lengths, data length against the extents) before anyone acts on it; a bad
 * one throws ReplicaProtocolError with the reason.
 */
import { pb, type meshvirt } from '@meshvirt/proto'
import { CHUNK_BYTES, MAX_CHUNK_EXTENTS } from './constants.js'
import { IMAGE_DIGEST } from '../images/image-ref.js'
import { ReplicaProtocolError } from './errors.js'
import type { OfferAnswer, ReplicaChunk, ReplicaDisk, ReplicaExtent, ReplicaMessage, ReplicaPointHeader, ReplicaPosition, ReplicaRefusal } from './types.js'

const VM_ID = /^[a-z0-9][a-z0-9._-]{0,62}$/
const DISK_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/
const MAX_DISKS = 64

const REFUSALS: Record<ReplicaRefusal, number> = {
  'stale-epoch': pb.ReplicaRefusal.REPLICA_REFUSAL_STALE_EPOCH,
  gap: pb.ReplicaRefusal.REPLICA_REFUSAL_GAP,
  'unknown-vm': pb.ReplicaRefusal.REPLICA_REFUSAL_UNKNOWN_VM,
  invalid: pb.ReplicaRefusal.REPLICA_REFUSAL_INVALID,
  'already-applied': pb.ReplicaRefusal.REPLICA_REFUSAL_ALREADY_APPLIED,
  'base-missing': pb.ReplicaRefusal.REPLICA_REFUSAL_BASE_MISSING,
  'base-unavailable': pb.ReplicaRefusal.REPLICA_REFUSAL_BASE_UNAVAILABLE
}

export function encodeReplicaMessage (m: ReplicaMessage): Uint8Array {
  switch (m.type) {
    case 'offer': return pb.ReplicaMessage.encode({ offer: { vmId: m.vmId, ...(m.point !== undefined ? { point: headerToWire(m.point) } : {}) } }).finish()
    case 'position': return pb.ReplicaMessage.encode({ position: answerToWire(m.answer) }).finish()
    case 'chunk': return pb.ReplicaMessage.encode({ chunk: { index: m.chunk.index, extents: m.chunk.extents, data: m.chunk.data, sha256: m.chunk.sha256 } }).finish()
    case 'end': return pb.ReplicaMessage.encode({ end: { digest: m.digest } }).finish()
    case 'applied': return pb.ReplicaMessage.encode({ applied: { position: answerToWire(m.answer), applyMs: Math.round(m.applyMs) } }).finish()
  }
}

export function decodeReplicaMessage (bytes: Uint8Array): ReplicaMessage {
  let m: meshvirt.v1.ReplicaMessage
  try { m = pb.ReplicaMessage.decode(bytes) } catch (err) { throw new ReplicaProtocolError('undecodable replica message', { cause: err }) }
  switch (m.body) {
    case 'offer': {
      const o = m.offer as meshvirt.v1.IReplicaOffer
      const vmId = vmIdOf(o.vmId)
      if (o.point == null) return { type: 'offer', vmId }
      const point = headerFromWire(o.point)
      if (point.vmId !== vmId) throw new ReplicaProtocolError(`offer for ${vmId} carries a point of ${point.vmId}`)
      return { type: 'offer', vmId, point }
    }
    case 'position': return { type: 'position', answer: answerFromWire(m.position as meshvirt.v1.IReplicaPosition) }
    case 'chunk': return { type: 'chunk', chunk: chunkFromWire(m.chunk as meshvirt.v1.IReplicaChunk) }
    case 'end': return { type: 'end', digest: digestOf(m.end?.digest, 'point digest') }
    case 'applied': return { type: 'applied', answer: answerFromWire(m.applied?.position ?? {}), applyMs: int(m.applied?.applyMs, 'apply_ms') }
    default: throw new ReplicaProtocolError('replica message without a body')
  }
}

function headerToWire (h: ReplicaPointHeader): meshvirt.v1.IReplicaPointHeader {
  return {
    vmId: h.vmId, epoch: h.epoch, seq: h.seq, baseSeq: h.baseSeq,
    kind: h.kind === 'full' ? pb.ReplicaPointKind.REPLICA_POINT_KIND_FULL : pb.ReplicaPointKind.REPLICA_POINT_KIND_INCREMENTAL,
    disks: h.disks.map((d) => ({ name: d.name, sizeBytes: d.sizeBytes, baseDigest: d.baseDigest ?? '' })), takenAtMs: h.takenAt, chunkCount: h.chunkCount, dataBytes: h.dataBytes
  }
}

export function headerFromWire (w: meshvirt.v1.IReplicaPointHeader): ReplicaPointHeader {
  const kind = w.kind === pb.ReplicaPointKind.REPLICA_POINT_KIND_FULL ? 'full' : w.kind === pb.ReplicaPointKind.REPLICA_POINT_KIND_INCREMENTAL ? 'incremental' : undefined
  if (kind === undefined) throw new ReplicaProtocolError(`unknown point kind ${String(w.kind)}`)
  const disks = (w.disks ?? []).map((d) => {
    const disk: ReplicaDisk = { name: diskOf(d.name), sizeBytes: int(d.sizeBytes, 'disk size') }
    if (d.baseDigest != null && d.baseDigest !== '') {
      if (kind !== 'full') throw new ReplicaProtocolError(`an incremental point names a base image for disk ${disk.name}`)
      if (!IMAGE_DIGEST.test(d.baseDigest)) throw new ReplicaProtocolError(`disk ${disk.name}: bad base image digest ${JSON.stringify(d.baseDigest.slice(0, 80))}`)
      disk.baseDigest = d.baseDigest
    }
    return disk
  })
  if (disks.length === 0 || disks.length > MAX_DISKS) throw new ReplicaProtocolError(`a point has 1 to ${MAX_DISKS} disks, not ${disks.length}`)
  if (new Set(disks.map((d) => d.name)).size !== disks.length) throw new ReplicaProtocolError('a point names a disk twice')
  const h: ReplicaPointHeader = {
    vmId: vmIdOf(w.vmId), epoch: int(w.epoch, 'epoch'), seq: int(w.seq, 'seq'), baseSeq: int(w.baseSeq, 'base_seq'), kind, disks,
    takenAt: int(w.takenAtMs, 'taken_at_ms'), chunkCount: int(w.chunkCount, 'chunk_count'), dataBytes: int(w.dataBytes, 'data_bytes')
  }
  if (h.seq === 0 || h.epoch === 0) throw new ReplicaProtocolError('a point has a non-zero epoch and seq')
  if (kind === 'incremental' ? h.baseSeq >= h.seq : h.baseSeq !== 0) throw new ReplicaProtocolError(`point ${h.seq} cannot apply on ${h.baseSeq}`)
  return h
}

function answerToWire (a: OfferAnswer): meshvirt.v1.IReplicaPosition {
  const p = a.position
  return {
    vmId: p.vmId, epoch: p.epoch, seq: p.seq, takenAtMs: p.takenAt, appliedAtMs: p.appliedAt, receivedChunks: a.receivedChunks,
    refusal: a.refusal === undefined ? pb.ReplicaRefusal.REPLICA_REFUSAL_NONE : REFUSALS[a.refusal], detail: a.detail ?? ''
  }
}

function answerFromWire (w: meshvirt.v1.IReplicaPosition): OfferAnswer {
  const position: ReplicaPosition = { vmId: vmIdOf(w.vmId), epoch: int(w.epoch, 'epoch'), seq: int(w.seq, 'seq'), takenAt: int(w.takenAtMs, 'taken_at_ms'), appliedAt: int(w.appliedAtMs, 'applied_at_ms') }
  const answer: OfferAnswer = { position, receivedChunks: int(w.receivedChunks, 'received_chunks') }
  const code = w.refusal ?? 0
  if (code !== pb.ReplicaRefusal.REPLICA_REFUSAL_NONE) {
    const refusal = (Object.keys(REFUSALS) as ReplicaRefusal[]).find((k) => REFUSALS[k] === code)
    if (refusal === undefined) throw new ReplicaProtocolError(`unknown refusal ${code}`)
    answer.refusal = refusal
  }
  if (w.detail != null && w.detail !== '') answer.detail = w.detail.slice(0, 1024)
  return answer
}

function chunkFromWire (w: meshvirt.v1.IReplicaChunk): ReplicaChunk {
  const raw = w.extents ?? []
  if (raw.length === 0 || raw.length > MAX_CHUNK_EXTENTS) throw new ReplicaProtocolError(`a chunk has 1 to ${MAX_CHUNK_EXTENTS} extents, not ${raw.length}`)
  const extents: ReplicaExtent[] = raw.map((e) => ({ disk: diskOf(e.disk), offset: int(e.offset, 'extent offset'), length: int(e.length, 'extent length'), zero: e.zero === true }))
  const data = w.data ?? new Uint8Array(0)
  const expected = extents.reduce((n, e) => (e.length === 0 ? Number.NaN : n + (e.zero ? 0 : e.length)), 0)
  if (data.length !== expected) throw new ReplicaProtocolError(`chunk ${String(w.index)} carries ${data.length} bytes for extents of ${expected}`)
  if (data.length > CHUNK_BYTES) throw new ReplicaProtocolError(`chunk ${String(w.index)} is larger than ${CHUNK_BYTES} bytes`)
  return { index: int(w.index, 'chunk index'), extents, data, sha256: digestOf(w.sha256, 'chunk sha256') }
}

function int (v: number | null | undefined, what: string): number {
  const n = v ?? 0
  if (!Number.isSafeInteger(n) || n < 0) throw new ReplicaProtocolError(`${what} must be a non-negative integer, not ${String(v)}`)
  return n
}

function vmIdOf (v: string | null | undefined): string {
  if (v == null || !VM_ID.test(v)) throw new ReplicaProtocolError(`bad VM id ${JSON.stringify(v)}`)
  return v
}

function diskOf (v: string | null | undefined): string {
  if (v == null || !DISK_NAME.test(v)) throw new ReplicaProtocolError(`bad disk name ${JSON.stringify(v)}`)
  return v
}

function digestOf (v: Uint8Array | null | undefined, what: string): Uint8Array {
  if (v == null || v.length !== 32) throw new ReplicaProtocolError(`${what} must be 32 bytes (sha256)`)
  return v
}
