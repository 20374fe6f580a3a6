/**
 * Where each emitter's stream stands on this host: the last (incarnation, seq) taken. Gossip
 * may lose or (rarely) reorder messages; this decides for each arriving event whether it is the
 * next one, one already seen, or one past a hole that must first be pulled from the emitter.
 */
export type Admission = 'next' | 'duplicate' | 'stale' | 'gap'

export interface StreamPosition {
  incarnation: number
  seq: number
}

export class EmitterOrder {
  private readonly positions = new Map<string, StreamPosition>()

  position (hostId: string): StreamPosition | undefined {
    return this.positions.get(hostId)
  }

  /** Classifies without recording; call `take` for what is kept. */
  admit (hostId: string, incarnation: number, seq: number): Admission {
    const p = this.positions.get(hostId)
    if (p === undefined || incarnation > p.incarnation) return seq === 1 ? 'next' : 'gap'
    if (incarnation < p.incarnation) return 'stale'
    if (seq <= p.seq) return 'duplicate'
    return seq === p.seq + 1 ? 'next' : 'gap'
  }

  take (hostId: string, incarnation: number, seq: number): void {
    this.positions.set(hostId, { incarnation, seq })
  }
}
