import type { HaveBitmap } from './have-bitmap.js'

/** A host a chunk may be asked of: its chunks (gossiped, or all for a full copy) and its load. */
export interface ChunkSource {
  hostId: string
  have: Pick<HaveBitmap, 'has'>
  /** Requests to it now in flight. */
  inFlight: number
}

export interface PieceState {
  /** Chunks still needed, in image order. */
  missing: readonly number[]
  /** Chunks being fetched now (not picked again). */
  inFlight: ReadonlySet<number>
  sources: readonly ChunkSource[]
  /** Per host, the requests it may have in flight. */
  perSource: number
  /** Requests in flight in all. */
  total: number
  /**
   * Where a chunk stands among chunks of the same rarity (default: its index, image order). A fetcher
   * draws its own random order: fetchers that start together then take different chunks from the
   * holder and have something to give each other; in image order they would all hold the same ones.
   */
  tieRank?: (chunk: number) => number
}

export interface PieceAssignment { chunk: number, hostId: string }

/**
 * The next requests to send: rarest chunk first (as BitTorrent and Kraken do, so a spread's fetchers
 * soon hold different chunks and serve each other), ties by `tieRank`; each to the least-loaded
 * source that holds it, ties by the order of `sources` (the caller shuffles or ranks them). Pure.
 */
export function nextPieces (s: PieceState): PieceAssignment[] {
  let room = s.total - s.inFlight.size
  if (room <= 0) return []
  const load = new Map(s.sources.map((src) => [src.hostId, src.inFlight]))
  // Counted, not listed: this runs after every chunk, over every missing one; holders are listed
  // only for the few chunks taken.
  const candidates: Array<{ chunk: number, holders: number }> = []
  for (const chunk of s.missing) {
    if (s.inFlight.has(chunk)) continue
    let holders = 0
    for (const src of s.sources) if (src.have.has(chunk)) holders++
    if (holders > 0) candidates.push({ chunk, holders })
  }
  const rank = s.tieRank ?? ((c: number) => c)
  candidates.sort((a, b) => a.holders - b.holders || rank(a.chunk) - rank(b.chunk))
  const out: PieceAssignment[] = []
  let open = s.sources.filter((src) => src.inFlight < s.perSource).length
  for (const c of candidates) {
    if (room <= 0 || open <= 0) break
    let best: ChunkSource | undefined
    for (const h of s.sources) {
      if (!h.have.has(c.chunk)) continue
      const l = load.get(h.hostId) as number
      if (l >= s.perSource) continue
      if (best === undefined || l < (load.get(best.hostId) as number)) best = h
    }
    if (best === undefined) continue
    const l = (load.get(best.hostId) as number) + 1
    load.set(best.hostId, l)
    if (l >= s.perSource) open--
    out.push({ chunk: c.chunk, hostId: best.hostId })
    room--
  }
  return out
}

/** Chunks no source holds: the fetch cannot finish until a holder of them appears. */
export function unheld (missing: readonly number[], sources: readonly ChunkSource[]): number[] {
  return missing.filter((c) => !sources.some((s) => s.have.has(c)))
}
