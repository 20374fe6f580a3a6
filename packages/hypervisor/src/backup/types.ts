/**
 * Continuous disk replication as its own small interface beside `Hypervisor` (optional features
 * stay apart from the lifecycle, as Nomad's drivers do). The owner of a VM takes crash-consistent
 * points of its disks while the guest runs; the agent ships each point's extents to replica holders.
 *
 *   startReplication(id)          a dirty bitmap starts recording (nothing is copied yet)
 *   takePoint(id, {kind:'full'})  whole disks as of now; the bitmap restarts from this instant
 *   takePoint(id, {kind:'incremental'})  only what changed since the previous point
 *   openPoint(id, seq)            the point's extents and a reader of their bytes
 *   releasePoint(id, seq)         every holder has it: drop its files
 *   stopReplication(id)           drop the bitmap and every point
 */
import type { AbortOptions } from '../types.js'

export type PointKind = 'full' | 'incremental'

/** One region of a point, in guest (virtual disk) bytes. */
export interface PointExtent {
  /** Disk name (`vda`). */
  disk: string
  offset: number
  length: number
  /** The region reads as zeros in the point (no bytes to ship). */
  zero: boolean
  /** Where the bytes lie in the point's own file (qcow2 data clusters); driver-specific. */
  fileOffset?: number
}

export interface PointDisk {
  name: string
  /** Virtual size of the disk, bytes. */
  sizeBytes: number
  /** The point's image for this disk on the owner (a qcow2 target of blockdev-backup). */
  file: string
  /** Bytes the backup job copied for this disk. */
  copiedBytes: number
  /**
   * Full point of a disk that is a thin layer on a shared base (`DiskSpec.sharedBase`): only the
   * VM's own layer was copied (`sync=top`); regions the point does not list read as the base's
   * bytes, not as zeros, so whoever applies it must start from its own copy of that base.
   */
  onBase?: boolean
}

export interface ReplicationPoint {
  id: string
  /** Grows by one per point of this VM on this host, across driver restarts. */
  seq: number
  kind: PointKind
  /**
   * The point an incremental's changes are counted from (the last point that restarted the bitmap;
   * it applies on that point or any later one); 0 for a full point.
   */
  baseSeq: number
  /**
   * A full point that left the bitmap running (TakePointOptions.seed): the incrementals after it
   * still apply on the points before it, so only holders that need a full copy need this one.
   */
  seed: boolean
  /** The instant the point describes (the transaction), epoch ms on the owner's clock. */
  takenAt: number
  disks: PointDisk[]
  /** Bytes copied by the backup jobs (all disks). */
  bytes: number
  /** Bytes the dirty bitmap marked just before the point (equal to the disk size for a full point). */
  dirtyBytes: number
  /** takePoint() from call to return, everything included. */
  durationMs: number
  /** The QMP transaction alone: the only moment the guest's I/O is drained for the point. */
  transactionMs: number
}

/** A point's contents, as the replica stream reads them. */
export interface PointData {
  readonly point: ReplicationPoint
  /**
   * Full point: the regions holding data (everything else is zero) — for an `onBase` disk, every
   * region of the VM's own layer, zeroed ones included (everything else is the base). Incremental:
   * every region changed since the base point, zeroed ones included. Sorted by disk, then offset.
   */
  readonly extents: readonly PointExtent[]
  /** `length` bytes of `disk` at guest offset `offset`, all inside one non-zero extent. */
  read: (disk: string, offset: number, length: number) => Promise<Uint8Array>
  close: () => Promise<void>
}

export interface ReplicationStatus {
  id: string
  active: boolean
  /** Seq of the last point taken (0: none yet). */
  lastSeq: number
  /** The point the next incremental counts its changes from (lastSeq unless a seed point came after it). */
  bitmapBase: number
  /** Points still held on the owner (not yet released). */
  points: number[]
  /** Bytes the bitmap marks dirty right now (0 when inactive or the VM is not running). */
  dirtyBytes: number
  /** The bitmap is gone or unusable (QEMU killed, VM restarted from elsewhere): the next point must be full. */
  needsFull: boolean
}

export interface TakePointOptions extends AbortOptions {
  kind: PointKind
  /**
   * Full only: a copy for a new holder that leaves the dirty bitmap running, so holders that are
   * in sync go on with incrementals instead of the whole disk again. Ignored (a normal full point)
   * when there is no usable bitmap.
   */
  seed?: boolean
  /**
   * Full only: copy every disk whole, even one on a shared base (for a holder that cannot get the
   * base). Without it, a shared-base disk's full point holds only the VM's own layer (`onBase`).
   */
  whole?: boolean
  /** Bound on the backup jobs. */
  timeoutMs?: number
}

export interface DiskReplication {
  /** Begin tracking writes (idempotent). The first point must then be full. */
  startReplication: (id: string, options?: AbortOptions) => Promise<ReplicationStatus>
  /** A crash-consistent point of every disk of the running VM. Throws ReplicationNeedsFullError for an incremental without a usable bitmap. */
  takePoint: (id: string, options: TakePointOptions) => Promise<ReplicationPoint>
  openPoint: (id: string, seq: number, options?: AbortOptions) => Promise<PointData>
  /** Drop the files of every point up to `seq` (inclusive): all holders applied them. */
  releasePoint: (id: string, seq: number, options?: AbortOptions) => Promise<void>
  /** Remove the bitmap and all points. */
  stopReplication: (id: string, options?: AbortOptions) => Promise<void>
  replicationStatus: (id: string, options?: AbortOptions) => Promise<ReplicationStatus>
}

/** A driver offering replication exposes it here, and declares it (`capabilities.diskReplication`). */
export interface ReplicationCapable {
  readonly replication: DiskReplication
}
