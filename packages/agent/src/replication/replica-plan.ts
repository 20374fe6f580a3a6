/**
 * The owner's replication decisions, pure: how often to take a point, what a holder's state is,
 * which points the owner may release, where new holders may go. The loop (replication-manager)
 * only carries them out.
 */
import type { LabelConstraint, PlacementRequest } from '@meshvirt/placement'
import { pointsToSend, type AvailablePoint } from '../replica/position.js'

/** RPO when the spec sets none. */
export const DEFAULT_RPO_MS = 5_000
export const MIN_RPO_MS = 1_000
export const MAX_RPO_MS = 24 * 3_600_000
export const MAX_REPLICAS = 8
/** Points kept on the owner for holders that lag; beyond, the oldest go (such a holder needs a full point). */
export const MAX_RETAINED_POINTS = 32

export interface HolderPosition {
  epoch: number
  seq: number
  takenAt: number
}

/** A holder as the point plan sees it: where it is, and whether it takes only whole disks. */
export interface ServedHolder extends Pick<HolderPosition, 'epoch' | 'seq'> {
  /** It cannot get the VM's base image: a full point for it copies the disks whole. */
  wholeOnly?: boolean
}

export type HolderState = 'seeding' | 'in-sync' | 'lagging' | 'unreachable'

/**
 * A point every half RPO: a holder's data is then at most half an RPO plus one transfer old when
 * the next point lands, which keeps the lag within the RPO while transfers keep up.
 */
export function pointIntervalMs (rpoMs: number): number {
  return Math.max(MIN_RPO_MS / 2, Math.floor(rpoMs / 2))
}

export function holderState (position: HolderPosition, epoch: number, now: number, rpoMs: number, reachable: boolean): HolderState {
  if (!reachable) return 'unreachable'
  if (position.seq === 0 || position.epoch !== epoch) return 'seeding'
  return now - position.takenAt <= 2 * rpoMs ? 'in-sync' : 'lagging'
}

/**
 * The next point must be full when the driver has no usable bitmap, or when a holder that is
 * being served could not be brought up to date by the points kept plus the next incremental. The
 * manager takes such a full point as a *seed* when the bitmap is usable: holders already in sync
 * skip it and go on with incrementals (only the new holder pays for the whole disk).
 *
 * A full point of a VM on a library image holds only the VM's own layer; it is taken `whole` (every
 * disk copied entire) when a holder that cannot get the image needs one.
 */
export function nextPoint (input: {
  needsFull: boolean
  lastSeq: number
  /** The point the driver's bitmap counts from (lastSeq unless a seed copy came after it). */
  bitmapBase?: number
  epoch: number
  available: readonly AvailablePoint[]
  served: readonly ServedHolder[]
}): { kind: 'full' | 'incremental', whole: boolean } {
  const next: AvailablePoint = { seq: input.lastSeq + 1, kind: 'incremental', baseSeq: input.bitmapBase ?? input.lastSeq }
  const chain = [...input.available, next]
  const lacking = input.needsFull || input.lastSeq === 0
    ? input.served
    : input.served.filter((p) => pointsToSend(p, input.epoch, chain, p.wholeOnly === true) === undefined)
  const full = input.needsFull || input.lastSeq === 0 || lacking.length > 0
  return { kind: full ? 'full' : 'incremental', whole: full && lacking.some((p) => p.wholeOnly === true) }
}

/** The kind of the next point (nextPoint without the whole-disk decision). */
export function nextPointKind (input: Parameters<typeof nextPoint>[0]): 'full' | 'incremental' {
  return nextPoint(input).kind
}

/**
 * The newest seq the owner may release (every point up to it): what all served holders have, but
 * never the newest point (the next incremental's base) and never so little that more than
 * `MAX_RETAINED_POINTS` stay. 0: release nothing.
 */
export function releasableUpTo (available: readonly AvailablePoint[], served: ReadonlyArray<Pick<HolderPosition, 'epoch' | 'seq'>>, epoch: number, maxRetained = MAX_RETAINED_POINTS): number {
  const seqs = available.map((p) => p.seq).sort((a, b) => a - b)
  if (seqs.length <= 1) return 0
  const newest = seqs.at(-1) as number
  const held = served.length === 0 ? 0 : Math.min(...served.map((p) => p.epoch === epoch ? p.seq : 0))
  let upTo = Math.min(held, newest - 1)
  if (seqs.length > maxRetained) upTo = Math.max(upTo, seqs[seqs.length - maxRetained - 1] as number)
  return upTo >= (seqs[0] as number) ? upTo : 0
}

/**
 * Where new holders may go: the VM's own rules that matter for running it there (accelerator,
 * CPU model, label constraints), its disk only, never the owner or a current holder, and — with a
 * failure-domain key — never the domain of the owner or of a current holder.
 */
export function holderRequest (base: PlacementRequest, input: {
  diskBytes: number
  wanted: number
  spreadBy: string
  ownerId: string
  holders: readonly string[]
  /** Failure-domain label values of the owner and the current holders (when known). */
  takenDomains: readonly string[]
  avoid: readonly string[]
  seed: string
}): PlacementRequest {
  const constraints: LabelConstraint[] = [...(base.constraints ?? [])]
  if (input.spreadBy !== '') {
    for (const d of new Set(input.takenDomains)) constraints.push({ key: input.spreadBy, op: 'ne', value: d })
  }
  return {
    resources: { vcpus: 0, memoryBytes: 0, diskBytes: input.diskBytes },
    ...(base.accelerator !== undefined ? { accelerator: base.accelerator } : {}),
    ...(base.cpuModel !== undefined ? { cpuModel: base.cpuModel } : {}),
    constraints,
    policy: 'spread',
    exclude: [input.ownerId, ...input.holders, ...input.avoid],
    replicas: input.wanted,
    ...(input.spreadBy !== '' ? { spreadBy: input.spreadBy } : {}),
    seed: input.seed
  }
}
