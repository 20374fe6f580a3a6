import type { TokenBucket } from '../replica/token-bucket.js'
import type { AvailablePoint } from '../replica/position.js'
import type { OutgoingPoint } from '../replica/outgoing-point.js'
import type { HolderPosition } from './replica-plan.js'

/** What the owner knows of one holder of one VM: where it is, and its sender. */
export interface HolderLink {
  host: string
  bucket: TokenBucket
  position: HolderPosition & { appliedAt: number }
  sending: Promise<void> | undefined
  failures: number
  retryAt: number
  lastError: string | undefined
  /** It refused a point on the VM's base image (it cannot get the image): full points for it are whole. */
  wholeOnly: boolean
}

/** A point kept for holders that lack it, and its open stream once a sender reads it. */
export interface Kept {
  point: AvailablePoint
  out: Promise<OutgoingPoint> | undefined
}

/** The owner's replication state of one VM: its holders' links and the points kept for them. */
export interface VmLoop {
  id: string
  links: Map<string, HolderLink>
  kept: Map<number, Kept>
  busy: boolean
  lastPointAt: number
  recruitAt: number
  /** Epoch and holder set the holders were last told (HoldReplica): told again when it changes. */
  announced: string
  /** Since when each holder has been seen dead (cleared when it is back). */
  deadSince: Map<string, number>
  /** When each stray holder was last told to drop its replica. */
  strayToldAt: Map<string, number>
  stats: { points: number, lastSeq: number, lastPauseMs: number, maxPauseMs: number, lastPointAt: number, lastError: string }
}

/** The loop of a VM this host starts replicating (or adopts after a migration or promotion). */
export function newLoop (id: string): VmLoop {
  return { id, links: new Map(), kept: new Map(), busy: false, lastPointAt: 0, recruitAt: 0, announced: '', deadSince: new Map(), strayToldAt: new Map(), stats: { points: 0, lastSeq: 0, lastPauseMs: 0, maxPauseMs: 0, lastPointAt: 0, lastError: '' } }
}
