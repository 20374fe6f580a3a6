/**
 * The measurements, taken on the model the way bench/src/gossip*.ts takes them on real hosts.
 *
 * - Convergence (gossip-cluster.ts `measureConvergence`): a random host changes its advert
 *   (published at once: the debounce window is empty), and the round lasts until every other
 *   host's view has applied it; rounds one at a time, 50 ms apart; p99 over rounds.
 * - Failure detection (`measureFailureDetection`/`measureKill`): a host other than the first is
 *   killed, the time until the *last* observer declares it dead (deadAllMs); median over kills.
 */
import { percentile } from '../harness.js'
import { FailureDetector, type DetectionResult } from './liveness.js'
import { GossipSim } from './gossip.js'
import { Cpu, Network, type CpuModel, type LinkModel } from './network.js'
import { gossipParams, livenessParams, MESH_DEGREES, TIMING } from './params.js'
import { Random } from './random.js'
import { buildTopology, meanDegree, type Topology } from './topology.js'

export interface Setup {
  n: number
  seed: number
  cpu: CpuModel
  link: LinkModel
  /** Every host also connected to host 0 (the bench's bootstrap star). */
  hub: boolean
  /** Heartbeat period of every host (advert-publisher.ts with the run's timing). */
  heartbeatMs: number
  advertBytes: number
  copyMs?: number
}

/** gossip-cluster.ts ROUND_TIMEOUT_MS and the gap between rounds. */
const ROUND_TIMEOUT_MS = 5_000
const ROUND_GAP_MS = 50
const DETECTION_TIMEOUT_MS = 60_000

export function topologyOf (s: Setup): Topology {
  return buildTopology(s.n, TIMING.targetPeers, MESH_DEGREES, new Random(s.seed), s.hub)
}

function simOf (s: Setup, topo: Topology, salt: number): GossipSim {
  const rng = new Random(s.seed * 7919 + salt)
  return new GossipSim(topo, gossipParams(s.link.lossMode === 'drop' && s.link.loss > 0, s.copyMs), new Cpu(s.n, s.cpu, rng), new Network(s.link, rng), rng)
}

export interface ConvergenceResult { p50Ms: number, p99Ms: number, maxMs: number, missed: number, rounds: number, avgPeers: number, avgMesh: number, copiesPerDelivery: number, eventsHandled: number }

export function convergence (s: Setup, rounds: number, topo = topologyOf(s)): ConvergenceResult {
  const sim = simOf(s, topo, 1)
  const rng = new Random(s.seed + 17)
  const times: number[] = []
  let missed = 0
  let t = 1000
  for (let r = 0; r < rounds; r++) {
    const source = rng.int(s.n)
    const msg = sim.publish(source, t, true, s.advertBytes)
    // The bench waits until every view holds the change (or the round times out), then 50 ms.
    sim.run(t + ROUND_TIMEOUT_MS, () => sim.reachedAll(msg))
    const seen = sim.messages[msg]?.seenAt as Float64Array
    let last = 0
    for (let h = 0; h < s.n; h++) if (h !== source) last = Math.max(last, (seen[h] as number) - t)
    if (!Number.isFinite(last)) { missed++; last = ROUND_TIMEOUT_MS }
    times.push(last)
    t = Math.max(sim.q.now, t + Math.min(last, ROUND_TIMEOUT_MS)) + ROUND_GAP_MS
  }
  return {
    p50Ms: percentile(times, 50), p99Ms: percentile(times, 99), maxMs: Math.max(...times), missed, rounds,
    avgPeers: meanDegree(topo.peers), avgMesh: meanDegree(topo.mesh),
    copiesPerDelivery: sim.dataCopies / (rounds * (s.n - 1)), eventsHandled: sim.q.handled
  }
}

export interface DetectionSummary { medianDeadAllMs: number, runs: DetectionResult[] }

/** Kills a random host (not host 0) `kills` times, each on a fresh model of the same cluster. */
export function detection (s: Setup, kills: number, topo = topologyOf(s)): DetectionSummary {
  const runs: DetectionResult[] = []
  const rng = new Random(s.seed + 29)
  for (let k = 0; k < kills; k++) {
    const sim = simOf(s, topo, 100 + k)
    const fd = new FailureDetector(sim, livenessParams(s.n, s.heartbeatMs, s.copyMs))
    // Start a few seconds in, so the shared loop's lag window is filled.
    fd.kill(1 + rng.int(s.n - 1), 3000)
    sim.run(3000 + DETECTION_TIMEOUT_MS)
    runs.push(fd.result())
  }
  return { medianDeadAllMs: percentile(runs.map((r) => r.deadAllMs), 50), runs }
}

/**
 * A silent failure: the victim's last heartbeat (mesh-published) reached every host, then
 * nothing — no reset, no answer. `detectors`: how many monitors per host run the missed-heartbeat
 * detector ('all' in the code; a number is the design variant: its first mesh peers). `slack`:
 * each host's deadline spread over up to one heartbeat (cluster-view.ts), or not (the rule before).
 * `memberProbing`: as the code (on), or the missed-heartbeat detector alone (the rule before).
 */
export function silentDetection (s: Setup, detectors: 'all' | number, topo = topologyOf(s), slack = true, memberProbing = true): DetectionResult {
  const sim = simOf(s, topo, 300)
  const victim = 1 + new Random(s.seed + 31).int(s.n - 1)
  const hb = sim.publish(victim, 1000, false, s.advertBytes)
  sim.run(1000 + ROUND_TIMEOUT_MS, () => sim.reachedAll(hb))
  const lastHeard = (sim.messages[hb] as { seenAt: Float64Array }).seenAt
  const fd = new FailureDetector(sim, livenessParams(s.n, s.heartbeatMs, s.copyMs, undefined, memberProbing ? TIMING.memberProbeIntervalMs : 0))
  const who = detectors === 'all'
    ? Array.from({ length: s.n }, (_, i) => i)
    : [...(topo.mesh[victim] as number[]), ...(topo.peers[victim] as number[])].slice(0, detectors)
  // The victim stops right after that heartbeat; others suspect it 2 heartbeats after hearing it.
  fd.silence(victim, sim.q.now, lastHeard, TIMING.suspectAfterHeartbeats * s.heartbeatMs, who, slack ? s.heartbeatMs : 0)
  sim.run(1000 + (TIMING.suspectAfterHeartbeats + (slack ? 1 : 0)) * s.heartbeatMs + DETECTION_TIMEOUT_MS)
  const r = fd.result()
  // Measured from the victim's silence, as the bench would (its last heartbeat ≈ the failure).
  return r
}

/** libp2p ping's payload. */
const PING_BYTES = 32

export interface IdleLoad {
  heartbeatMs: number
  /** Distinct heartbeats a host receives per second. */
  heartbeatsPerHostS: number
  dataCopiesPerDelivery: number
  controlPerDelivery: number
  /** IHAVEs a host receives per second (one per gossip heartbeat from each peer that picks it). */
  ihavePerHostS: number
  /** Member probing's pings a host receives per second (its answers to others' and others' answers to its own). */
  memberPingsPerHostS: number
  msgsPerHostS: number
  bytesPerHostS: number
  /** Fraction of (heartbeat, host) deliveries that never arrived within one heartbeat period. */
  missRate: number
  deliveriesSampled: number
}

/**
 * Idle traffic, sampled and scaled: `samples` heartbeats from random hosts are propagated
 * message by message (with loss and repair); the per-delivery copies they show are multiplied by
 * the heartbeat rate every host receives, (N − 1) / period. IHAVE: each host sends one to
 * max(Dlazy, ¼ of its non-mesh peers) each gossip heartbeat while it has ids to announce
 * (always, idle), carrying the ids of the last 3 heartbeats. Plus member probing's pings.
 */
export function idleLoad (s: Setup, samples: number, envelopeBytes: number, idBytes: number, topo = topologyOf(s)): IdleLoad {
  const sim = simOf(s, topo, 200)
  const rng = new Random(s.seed + 43)
  let missed = 0
  const spacing = 20
  const ids: number[] = []
  for (let i = 0; i < samples; i++) ids.push(sim.publish(rng.int(s.n), 1000 + i * spacing, false, s.advertBytes))
  sim.run(1000 + samples * spacing + Math.min(s.heartbeatMs, 30_000))
  for (const id of ids) {
    const m = sim.messages[id] as { seenAt: Float64Array, origin: number }
    const sent = 1000 + (id - (ids[0] as number)) * spacing
    for (let h = 0; h < s.n; h++) if (h !== m.origin && (m.seenAt[h] as number) - sent > s.heartbeatMs) missed++
    sim.release(id)
  }
  const deliveries = samples * (s.n - 1)
  const perS = (s.n - 1) / (s.heartbeatMs / 1000)
  const copies = sim.dataCopies / deliveries
  const control = sim.controlMsgs / deliveries
  const { dlazy, gossipFactor } = gossipParams(true)
  let ihaveSent = 0
  for (let h = 0; h < s.n; h++) {
    const mesh = new Set(topo.mesh[h])
    const cands = (topo.peers[h] as number[]).filter((p) => !mesh.has(p)).length
    ihaveSent += Math.min(cands, Math.max(dlazy, Math.floor(gossipFactor * cands)))
  }
  const ihavePerS = (ihaveSent / s.n) * (1000 / TIMING.gossipHeartbeatMs)
  const idsPerIhave = Math.min(5000, perS * 3 * TIMING.gossipHeartbeatMs / 1000)
  // Member probing: a host pings one quiet connected host per period and answers, on average, one.
  const memberPingsPerS = TIMING.memberProbeIntervalMs > 0 ? 2 * 1000 / TIMING.memberProbeIntervalMs : 0
  const msgs = perS * (copies + control) + ihavePerS + memberPingsPerS
  const bytes = perS * copies * (s.advertBytes + envelopeBytes) + perS * control * (envelopeBytes / 2 + idBytes) + ihavePerS * (envelopeBytes / 2 + idsPerIhave * idBytes) + memberPingsPerS * (envelopeBytes / 2 + PING_BYTES)
  return {
    heartbeatMs: s.heartbeatMs, heartbeatsPerHostS: perS, dataCopiesPerDelivery: copies, controlPerDelivery: control,
    ihavePerHostS: ihavePerS, memberPingsPerHostS: memberPingsPerS, msgsPerHostS: msgs, bytesPerHostS: bytes, missRate: missed / deliveries, deliveriesSampled: deliveries
  }
}
