import type { OfferAnswer, ReplicaPointHeader, ReplicaPointKind, ReplicaPosition } from './types.js'

/** A holder that has nothing yet. */
export function emptyPosition (vmId: string): ReplicaPosition {
  return { vmId, epoch: 0, seq: 0, takenAt: 0, appliedAt: 0 }
}

/** Orders (epoch, seq): epochs first (a new owner's points supersede the old owner's), then seq. */
export function compareVersions (a: { epoch: number, seq: number }, b: { epoch: number, seq: number }): number {
  return a.epoch !== b.epoch ? Math.sign(a.epoch - b.epoch) : Math.sign(a.seq - b.seq)
}

/** Whether two headers announce the very same point (a partial of one may resume the other). */
export function samePoint (a: ReplicaPointHeader, b: ReplicaPointHeader): boolean {
  return a.vmId === b.vmId && a.epoch === b.epoch && a.seq === b.seq && a.baseSeq === b.baseSeq && a.kind === b.kind &&
    a.takenAt === b.takenAt && a.chunkCount === b.chunkCount && a.dataBytes === b.dataBytes &&
    a.disks.length === b.disks.length && a.disks.every((d, i) => d.name === b.disks[i]?.name && d.sizeBytes === b.disks[i]?.sizeBytes && d.baseDigest === b.disks[i]?.baseDigest)
}

/**
 * The holder's answer to an offered point, from what it exposes and what it has half received.
 * An older epoch is fenced off; a point it has (or has passed) is skipped; an incremental applies
 * on its base point or any later one of the same epoch (its regions are everything written since
 * the base, so on a later point the result is the same); anything else is accepted, resuming a
 * matching partial.
 */
export function answerOffer (position: ReplicaPosition, header: ReplicaPointHeader, partial?: { header: ReplicaPointHeader, chunks: number }): OfferAnswer {
  if (header.epoch < position.epoch) {
    return { position, receivedChunks: 0, refusal: 'stale-epoch', detail: `holder is at epoch ${position.epoch}, the point is of epoch ${header.epoch}` }
  }
  if (compareVersions(header, position) <= 0) {
    return { position, receivedChunks: 0, refusal: 'already-applied', detail: `holder is at ${position.epoch}/${position.seq}` }
  }
  if (header.kind === 'incremental' && (header.epoch !== position.epoch || header.baseSeq > position.seq)) {
    return { position, receivedChunks: 0, refusal: 'gap', detail: `point ${header.epoch}/${header.seq} applies on ${header.epoch}/${header.baseSeq}, the holder is at ${position.epoch}/${position.seq}` }
  }
  const chunks = partial !== undefined && samePoint(partial.header, header) ? Math.min(partial.chunks, header.chunkCount) : 0
  return { position, receivedChunks: chunks }
}

export interface AvailablePoint {
  seq: number
  kind: ReplicaPointKind
  baseSeq: number
  /** A full point that left the owner's bitmap running: holders past its base skip it. */
  seed?: boolean
  /** A full point holding only the VM's layer over a library image (holders start from the image). */
  onBase?: boolean
}

/**
 * Which of the owner's points (all of epoch `epoch`) to ship, in order, to bring a holder at
 * `position` to the newest: the chain of incrementals from its point when there is one (an
 * incremental applies on its base or any later point; seed copies are skipped), else the newest
 * full point and the incrementals after it. `undefined`: nothing held on the owner can bring
 * it there, so the owner must take a new full point. An empty list: the holder is up to date.
 * `wholeOnly`: the holder cannot get the VM's base image, so full points on it do not exist for it.
 */
export function pointsToSend (position: Pick<ReplicaPosition, 'epoch' | 'seq'>, epoch: number, available: readonly AvailablePoint[], wholeOnly = false): AvailablePoint[] | undefined {
  const points = available.filter((p) => !(wholeOnly && p.kind === 'full' && p.onBase === true)).sort((a, b) => a.seq - b.seq)
  const newest = points.at(-1)
  if (newest === undefined) return position.epoch === epoch && position.seq > 0 ? [] : undefined
  if (position.epoch > epoch) return undefined
  if (position.epoch === epoch && position.seq >= newest.seq) return []
  const chainFrom = (start: number, base: number): AvailablePoint[] | undefined => {
    const chain: AvailablePoint[] = []
    let at = base
    for (const p of points.slice(start)) {
      if (p.seq <= at) continue
      if (p.kind === 'full') {
        // A seed copy (for a new holder) left the bitmap running: the next incrementals apply here too.
        if (p.seed === true) continue
        return undefined
      }
      if (p.baseSeq > at) return undefined
      chain.push(p)
      at = p.seq
    }
    return chain
  }
  if (position.epoch === epoch) {
    // Empty when only seed copies are newer: this holder goes on with the next incremental.
    const chain = chainFrom(0, position.seq)
    if (chain !== undefined) return chain
  }
  for (let i = points.length - 1; i >= 0; i--) {
    const full = points[i] as AvailablePoint
    if (full.kind !== 'full') continue
    const rest = chainFrom(i + 1, full.seq)
    return rest === undefined ? undefined : [full, ...rest]
  }
  return undefined
}

/** The recovery point a holder achieves right now, on the owner's clock: how old its data is. */
export function lagMs (position: Pick<ReplicaPosition, 'takenAt' | 'seq'>, now: number): number {
  return position.seq === 0 ? Number.POSITIVE_INFINITY : Math.max(0, now - position.takenAt)
}
