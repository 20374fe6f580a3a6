/**
 * Who is connected to whom, and the gossipsub mesh over those connections.
 *
 * Connections follow packages/mesh/src/peer-connector.ts: every connect interval a host with
 * fewer than `targetPeers` connections (inbound ones count) dials random hosts of its view up to
 * that quota; dials are accepted (libp2p's connection manager is far from its limit here). With
 * `hub`, every host first connects to host 0, as every bench host bootstraps off the first one
 * (gossip-cluster.ts) and the hub keeps those connections.
 *
 * The mesh follows gossipsub's heartbeat (node_modules/@libp2p/gossipsub gossipsub.js
 * `heartbeat`, with D/Dlo/Dhi/Dout of packages/mesh/src/gossip-options.ts): a host with fewer
 * than Dlo mesh peers grafts random topic peers up to D, the grafted peer adds it back; a host
 * with more than Dhi prunes to D, keeping at least Dout outbound peers.
 */
import type { Random } from './random.js'

export interface MeshDegrees { d: number, dlo: number, dhi: number, dout: number }

export interface Topology {
  n: number
  /** Connected peers of each host (symmetric). */
  peers: number[][]
  /** Whether host h dialled peers[h][i] (gossipsub's outbound, for Dout). */
  outbound: boolean[][]
  /** gossipsub mesh peers per topic (symmetric). */
  mesh: number[][]
}

export function connect (n: number, targetPeers: number, rng: Random, hub: boolean): Pick<Topology, 'n' | 'peers' | 'outbound'> {
  const peers: number[][] = Array.from({ length: n }, () => [])
  const outbound: boolean[][] = Array.from({ length: n }, () => [])
  const sets: Array<Set<number>> = Array.from({ length: n }, () => new Set())
  const link = (a: number, b: number): void => {
    sets[a]?.add(b); sets[b]?.add(a)
    peers[a]?.push(b); outbound[a]?.push(true)
    peers[b]?.push(a); outbound[b]?.push(false)
  }
  if (hub) for (let h = 1; h < n; h++) link(h, 0)
  // Connector rounds: hosts wake in random order (their intervals are not aligned).
  for (let round = 0; round < 3; round++) {
    const order = rng.shuffle(Array.from({ length: n }, (_, i) => i))
    for (const h of order) {
      const mine = sets[h] as Set<number>
      let want = targetPeers - mine.size
      let tries = 0
      while (want > 0 && tries++ < 20 * targetPeers && mine.size < n - 1) {
        const p = rng.int(n)
        if (p === h || mine.has(p)) continue
        link(h, p)
        want--
      }
    }
  }
  return { n, peers, outbound }
}

/** Runs `rounds` gossipsub heartbeats (hosts in random order) from empty meshes. */
export function formMesh (conn: Pick<Topology, 'n' | 'peers' | 'outbound'>, deg: MeshDegrees, rng: Random, rounds = 4): number[][] {
  const { n, peers, outbound } = conn
  const mesh: Array<Set<number>> = Array.from({ length: n }, () => new Set())
  const isOut = (h: number, p: number): boolean => outbound[h]?.[(peers[h] as number[]).indexOf(p)] === true
  for (let r = 0; r < rounds; r++) {
    for (const h of rng.shuffle(Array.from({ length: n }, (_, i) => i))) {
      const m = mesh[h] as Set<number>
      if (m.size < deg.dlo) {
        const candidates = rng.shuffle((peers[h] as number[]).filter((p) => !m.has(p)))
        for (const p of candidates.slice(0, deg.d - m.size)) { m.add(p); mesh[p]?.add(h) }
      }
      if (m.size > deg.dhi) {
        const keep = rng.shuffle([...m])
        // Keep Dout outbound peers first, as gossipsub does.
        keep.sort((a, b) => Number(isOut(h, b)) - Number(isOut(h, a)))
        const kept = new Set([...keep.slice(0, deg.dout), ...rng.shuffle(keep.slice(deg.dout)).slice(0, deg.d - deg.dout)])
        for (const p of m) if (!kept.has(p)) { m.delete(p); mesh[p]?.delete(h) }
      }
      const outs = [...m].filter((p) => isOut(h, p)).length
      if (outs < deg.dout) {
        const candidate = (peers[h] as number[]).find((p) => !m.has(p) && isOut(h, p))
        if (candidate !== undefined) { m.add(candidate); mesh[candidate]?.add(h) }
      }
    }
  }
  return mesh.map((s) => [...s])
}

export function buildTopology (n: number, targetPeers: number, deg: MeshDegrees, rng: Random, hub: boolean): Topology {
  const conn = connect(n, targetPeers, rng, hub)
  return { ...conn, mesh: formMesh(conn, deg, rng) }
}

export function meanDegree (lists: number[][]): number {
  return lists.reduce((s, l) => s + l.length, 0) / Math.max(1, lists.length)
}
