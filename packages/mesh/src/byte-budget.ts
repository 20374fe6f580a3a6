/**
 * How many bytes of partly read request/response messages a host keeps buffered, per peer and in
 * all (issue 22, finding 5: a peer that parked nearly complete 4 MiB messages on many open streams
 * pinned 150–300 MB per connection, 1.5 GB in all, and none of it came back after it left). A stream
 * whose message does not fit is refused (reset) before its bytes are kept. Pure bookkeeping.
 */

/** Per peer: a few maximal (4 MiB) requests at once; ordinary ones are a few KiB. */
export const DEFAULT_PEER_BUFFER_BYTES = 16 * 1024 * 1024
/** In all: a bound on what every peer together can make this host hold for unread requests. */
export const DEFAULT_TOTAL_BUFFER_BYTES = 64 * 1024 * 1024
/**
 * Frames up to this size are held to the peer's share only, not to the total: the lease, negotiate
 * and control requests of legitimate peers are a few KiB, and must get through while an insider's
 * large frames fill the total (they still count in it; the total they can add is peers × share).
 */
export const DEFAULT_SMALL_FRAME_BYTES = 64 * 1024

export interface ByteBudgetInit {
  perPeerBytes?: number
  totalBytes?: number
  smallFrameBytes?: number
}

export interface ByteBudgetStats {
  /** Bytes held now, in all. */
  bytes: number
  /** Peers holding any. */
  peers: number
  /** The most held at once, in all. */
  peakBytes: number
  /** Takes refused: over the peer's share, or over the total. */
  refused: { peer: number, total: number }
}

export class ByteBudget {
  readonly perPeerBytes: number
  readonly totalBytes: number
  readonly smallFrameBytes: number
  private readonly held = new Map<string, number>()
  private total = 0
  private peak = 0
  private readonly refusals = { peer: 0, total: 0 }

  constructor (init: ByteBudgetInit = {}) {
    this.perPeerBytes = init.perPeerBytes ?? DEFAULT_PEER_BUFFER_BYTES
    this.totalBytes = init.totalBytes ?? DEFAULT_TOTAL_BUFFER_BYTES
    this.smallFrameBytes = init.smallFrameBytes ?? DEFAULT_SMALL_FRAME_BYTES
  }

  /** Takes `n` bytes for `peer`; refused (nothing taken) when that would pass its share, or the total (large frames). */
  take (peer: string, n: number): 'ok' | 'peer' | 'total' {
    if (n <= 0) return 'ok'
    const mine = this.held.get(peer) ?? 0
    if (mine + n > this.perPeerBytes) { this.refusals.peer++; return 'peer' }
    if (n > this.smallFrameBytes && this.total + n > this.totalBytes) { this.refusals.total++; return 'total' }
    this.held.set(peer, mine + n)
    this.total += n
    if (this.total > this.peak) this.peak = this.total
    return 'ok'
  }

  /** Gives back `n` bytes `peer` took (never more than it holds). */
  give (peer: string, n: number): void {
    const mine = this.held.get(peer) ?? 0
    const back = Math.min(mine, n)
    if (mine - back === 0) this.held.delete(peer)
    else this.held.set(peer, mine - back)
    this.total -= back
  }

  heldBy (peer: string): number {
    return this.held.get(peer) ?? 0
  }

  stats (): ByteBudgetStats {
    return { bytes: this.total, peers: this.held.size, peakBytes: this.peak, refused: { ...this.refusals } }
  }
}
