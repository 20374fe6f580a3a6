/**
 * The knobs of gossip and liveness, and presets (as memberlist's LAN/WAN/local configs).
 *
 * Failure detection at N hosts, for a host that stops:
 *   suspect after  suspectAfterHeartbeats × heartbeat (no advert heard)
 *   dead after     suspicion timeout, between
 *                    min = suspicionMult × max(1, log10 N) × heartbeat   (all probes failed)
 *                    max = suspicionMaxTimeoutMult × min                   (probes inconclusive)
 * LAN at 50 hosts: suspect at 2 s, probes refused at once → dead ≈ 2 s + 1.7 s ≈ 3.7 s.
 */
export interface MeshTiming {
  /** Base heartbeat period; spaced out with N (see heartbeatIntervalMs in suspicion.ts). */
  heartbeatIntervalMs: number
  /** Ceiling on heartbeats per second a host receives from the whole cluster. */
  maxAdvertsPerSecond: number
  /** Changes within this window are coalesced into one advert (the first goes out at once). */
  publishDebounceMs: number
  /** A host not heard for this many of its own heartbeat periods becomes suspect. */
  suspectAfterHeartbeats: number
  /** How often a suspect is pinged directly. */
  probeIntervalMs: number
  probeTimeoutMs: number
  suspicionMult: number
  suspicionMaxTimeoutMult: number
  /** Failed probes that bring the suspicion timeout down to its minimum. */
  expectedConfirmations: number
  /** Dead hosts are forgotten after this long (they return as new when they come back). */
  deadRetentionMs: number
  /** gossipsub's own heartbeat: mesh repair and IHAVE gossip. */
  gossipHeartbeatMs: number
  /** How often the connector tops connections up to `targetPeers`. */
  connectIntervalMs: number
  /** Outbound connections each host keeps to random hosts of its view (≥ gossipsub D). */
  targetPeers: number
  /** Delay before the first bootstrap dial (the listener must be up first). */
  bootstrapDelayMs: number
}

/** One data centre: ~0.1–1 ms RTT, failure detection in a few seconds. */
export const LAN_TIMING: Readonly<MeshTiming> = Object.freeze({
  heartbeatIntervalMs: 1000,
  maxAdvertsPerSecond: 200,
  publishDebounceMs: 50,
  suspectAfterHeartbeats: 2,
  probeIntervalMs: 500,
  probeTimeoutMs: 500,
  suspicionMult: 1,
  suspicionMaxTimeoutMult: 4,
  expectedConfirmations: 2,
  deadRetentionMs: 10 * 60_000,
  gossipHeartbeatMs: 1000,
  connectIntervalMs: 2000,
  targetPeers: 8,
  bootstrapDelayMs: 10
})

/** Sites over a WAN: 10–100 ms RTT and packet loss; slower to call a host dead. */
export const WAN_TIMING: Readonly<MeshTiming> = Object.freeze({
  ...LAN_TIMING,
  heartbeatIntervalMs: 3000,
  maxAdvertsPerSecond: 100,
  publishDebounceMs: 200,
  suspectAfterHeartbeats: 3,
  probeIntervalMs: 2000,
  probeTimeoutMs: 3000,
  suspicionMult: 2,
  suspicionMaxTimeoutMult: 6,
  gossipHeartbeatMs: 1000,
  connectIntervalMs: 5000
})

/** Tests on loopback: everything ~5× faster, so liveness tests take a couple of seconds. */
export const LOCAL_TEST_TIMING: Readonly<MeshTiming> = Object.freeze({
  ...LAN_TIMING,
  heartbeatIntervalMs: 200,
  publishDebounceMs: 10,
  probeIntervalMs: 100,
  probeTimeoutMs: 200,
  suspicionMaxTimeoutMult: 3,
  deadRetentionMs: 60_000,
  gossipHeartbeatMs: 200,
  connectIntervalMs: 300
})

export const TIMING_PRESETS = Object.freeze({ lan: LAN_TIMING, wan: WAN_TIMING, local: LOCAL_TEST_TIMING })
export type TimingPreset = keyof typeof TIMING_PRESETS
