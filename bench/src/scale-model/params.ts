/**
 * The model's inputs: the mesh's own constants (imported, so the model follows the code) and the
 * few parameters fitted to the measured runs (bench/results/gossip.json).
 */
import {
  GOSSIP_D, GOSSIP_DHI, GOSSIP_DLAZY, GOSSIP_DLO, GOSSIP_DOUT, LAN_TIMING, heartbeatIntervalMs, remainingSuspicionTimeMs,
  suspicionTimeoutMs, type MeshTiming
} from '@meshvirt/mesh'
import type { GossipParams } from './gossip.js'
import type { LivenessParams } from './liveness.js'
import type { MeshDegrees } from './topology.js'

/**
 * Fitted: CPU time (ms of one Node core) to take in one duplicate copy or control message —
 * noise decryption, yamux, protobuf decode, fast-id seen-cache lookup. Fitted by a grid over
 * 0.1–0.5 ms (step 0.05) against the in-process bench's convergence p99 at N = 50 and 100 (all
 * hosts on one event loop: cores = 1; 7 seeds, the bench's round counts), minimising the larger
 * relative error: 0.35 ms gives −8 % and +11 % against the run of 2026-11-26 (the run of 2026-12-05
 * measured 97 and 1,030 ms: +44 % and −42 %; docs/benchmarks.md). The same CPU cost is then used per host for hosts on their own machines.
 */
export const COPY_MS = 0.35
/**
 * A first copy also pays the Ed25519 verification, the topic validator, the view update and the
 * forwarding to ~D peers: assumed 2 × a duplicate (not fitted separately: the bench cannot tell
 * them apart).
 */
export const FIRST_COPY_MS = 2 * COPY_MS
/**
 * Fitted: the size of the background tasks (timers, gossipsub heartbeats, idle heartbeats) of
 * the shared loop, whose total is the measured idle CPU (gossip.json idle_cpu_pct_per_host_N × N).
 * Long tasks make a long loop lag, which makes failed probes inconclusive (liveness-prober.ts,
 * > 100 ms). Grid over 0.5–70 ms together with COPY_MS: from ~2 ms up, at N = 100 (loop 68 %
 * busy) most kills are never detected (both disconnect probes inconclusive), at 0.5–1 ms every
 * probe counts; no size gives the measured 3.86 s at N = 100 (one kill), 0.5 ms fits the rest.
 */
export const BACKGROUND_TASK_MS = 0.5
/** Loopback TCP through the kernel: a one-way copy in the bench (one machine). */
export const LOOPBACK_LATENCY_MS: [number, number] = [0.05, 0.2]
/** A LAN: one-way 0.1–0.5 ms (RTT 0.2–1 ms). */
export const LAN_LATENCY_MS: [number, number] = [0.1, 0.5]
/** Linux's minimum TCP retransmission timeout. */
export const TCP_MIN_RTO_MS = 200
/** liveness-prober.ts MAX_LOOP_LAG_FOR_EVIDENCE_MS (not exported by @meshvirt/mesh). */
export const MAX_LOOP_LAG_FOR_EVIDENCE_MS = 100
/** liveness-prober.ts TICKS_PER_PROBE_INTERVAL. */
const TICKS_PER_PROBE_INTERVAL = 4

/** The bench's advert (markedCapacity, one label, one address): 231 bytes encoded, measured with encodeHostAdvert. */
export const ADVERT_BYTES = 231
/** A suspicion notice: two peer ids, three counters. */
export const NOTICE_BYTES = 110
/** Per gossip copy on the wire: signature 64, from 38, seqno 8, topic ~30, protobuf, yamux 12, noise 16. */
export const ENVELOPE_BYTES = 180
/** One id in an IHAVE/IWANT (StrictSign id: from + seqno) with its protobuf framing. */
export const ID_BYTES = 48

export const MESH_DEGREES: MeshDegrees = { d: GOSSIP_D, dlo: GOSSIP_DLO, dhi: GOSSIP_DHI, dout: GOSSIP_DOUT }

/** The timing the model runs: LAN_TIMING (timing.ts), as the gossip bench does. */
export const TIMING: Readonly<MeshTiming> = LAN_TIMING

export function gossipParams (ihave: boolean, copyMs = COPY_MS): GossipParams {
  return {
    copyMs,
    firstCopyMs: 2 * copyMs,
    dlazy: GOSSIP_DLAZY,
    gossipFactor: 0.25, // gossipsub constants.js GossipsubGossipFactor
    gossipHeartbeatMs: TIMING.gossipHeartbeatMs,
    historyGossip: 3, // GossipsubHistoryGossip
    idontwantMinBytes: 512, // GossipsubIdontwantMinDataSize
    ihave
  }
}

/** Suspicion timeouts for a view of `n` live hosts whose heartbeat is `heartbeatMs` (cluster-view.ts `tick`). */
export function livenessParams (n: number, heartbeatMs: number, copyMs = COPY_MS, maxSimulatedNotices = 64, memberProbeIntervalMs = TIMING.memberProbeIntervalMs): LivenessParams {
  const min = suspicionTimeoutMs(TIMING.suspicionMult, n, TIMING.probeIntervalMs)
  return {
    probeIntervalMs: TIMING.probeIntervalMs,
    probeTimeoutMs: TIMING.probeTimeoutMs,
    memberProbeIntervalMs,
    tickMs: Math.max(10, Math.floor(Math.min(TIMING.probeIntervalMs, heartbeatMs) / TICKS_PER_PROBE_INTERVAL)),
    expectedConfirmations: TIMING.expectedConfirmations,
    minTimeoutMs: min,
    maxTimeoutMs: min * TIMING.suspicionMaxTimeoutMult,
    remaining: remainingSuspicionTimeMs,
    maxLagForEvidenceMs: MAX_LOOP_LAG_FOR_EVIDENCE_MS,
    pingCostMs: 2 * copyMs,
    noticeBytes: NOTICE_BYTES,
    maxSimulatedNotices
  }
}

/** advert-publisher.ts: the heartbeat period of a host that sees `n` hosts alive. */
export function heartbeatMs (n: number, timing: Pick<MeshTiming, 'heartbeatIntervalMs' | 'maxAdvertsPerSecond'> = TIMING): number {
  return heartbeatIntervalMs(timing.heartbeatIntervalMs, n, timing.maxAdvertsPerSecond)
}
