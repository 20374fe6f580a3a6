/** The replica stream's domain types (wire types stop at replica-codec.ts). */

export type ReplicaPointKind = 'full' | 'incremental'

export interface ReplicaDisk {
  name: string
  sizeBytes: number
  /**
   * Full point only: the disk is a thin layer on this library image (`sha256:<hex>`) and the point holds
   * the layer alone; what it does not list reads as the image's bytes. Absent: the disk whole.
   */
  baseDigest?: string
}

/** A point as the owner announces it: which VM, which epoch and seq, what it applies on, how big. */
export interface ReplicaPointHeader {
  vmId: string
  epoch: number
  seq: number
  /** 0 for a full point. */
  baseSeq: number
  kind: ReplicaPointKind
  disks: ReplicaDisk[]
  /** The instant the point describes, epoch ms on the owner's clock. */
  takenAt: number
  chunkCount: number
  dataBytes: number
}

export interface ReplicaExtent {
  disk: string
  offset: number
  length: number
  zero: boolean
}

export interface ReplicaChunk {
  index: number
  extents: ReplicaExtent[]
  /** The non-zero extents' bytes in extent order. */
  data: Uint8Array
  sha256: Uint8Array
}

/**
 * Why a holder refuses a point. `base-missing`: the point is a layer on a base image the holder is
 * still fetching (offer it again later); `base-unavailable`: the holder cannot get that image (send
 * the disk whole).
 */
export type ReplicaRefusal = 'stale-epoch' | 'gap' | 'unknown-vm' | 'invalid' | 'already-applied' | 'base-missing' | 'base-unavailable'

/** What a holder exposes: the last point applied in full (epoch 0 / seq 0: nothing yet). */
export interface ReplicaPosition {
  vmId: string
  epoch: number
  seq: number
  takenAt: number
  appliedAt: number
}

/** The holder's answer to an offer. */
export interface OfferAnswer {
  position: ReplicaPosition
  /** Verified chunks of the offered point it already has: the sender resumes there. */
  receivedChunks: number
  refusal?: ReplicaRefusal
  detail?: string
}

export type ReplicaMessage =
  | { type: 'offer', vmId: string, point?: ReplicaPointHeader }
  | { type: 'position', answer: OfferAnswer }
  | { type: 'chunk', chunk: ReplicaChunk }
  | { type: 'end', digest: Uint8Array }
  | { type: 'applied', answer: OfferAnswer, applyMs: number }
