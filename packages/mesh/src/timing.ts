/**
 * The knobs of gossip and liveness, and presets (as memberlist's LAN/WAN/local configs).
 *
 * Failure detection, for a host that dies:
 *   - its direct peers see their connections drop, probe it (a direct ping), and when that fails
 *     publish a suspicion notice; every host that receives one marks it suspect and probes it too;
 *   - a host that falls silent (power lost, hung, cut off: no connection drops) is found by member
 *     probing (SWIM's protocol period): every memberProbeIntervalMs each host pings one host, in a
 *     shuffled round-robin, among those it is connected to and has not heard from for that long;
 *     two failed pings make it publish a notice, and its other connected peers check it too;
 *   - failing both, a host not heard for suspectAfterHeartbeats × its heartbeat becomes suspect;
 *   - a suspect is dead after the suspicion timeout, between
 *       min = suspicionMult × max(1, log10 N) × probeInterval   (expectedConfirmations reached)
 *       max = suspicionMaxTimeoutMult × min                      (no confirmation)
 *     where confirmations are distinct reporters plus this host's failed probes.
 * LAN at 50 hosts: notices within ~10 ms of the drop, dead after min = 1.7 s.
 * Heartbeats only back this up and refresh adverts (a newcomer pulls every advert from its first
 * peer, view-sync.ts, rather than waiting for them), so they are spaced out: 15 s base, at most 13
 * heartbeats/s received per host — twice what a 100-host cluster sends (77 s at 1,000 hosts, 770 s
 * at 10,000). A host's load and its VMs' measured use ride them, so the balancer sees others' load
 * that late; capacity changes are news and go out at once.
 */
export interface MeshTiming {
  /** Base heartbeat period; spaced out with N (see heartbeatIntervalMs in suspicion.ts). */
  heartbeatIntervalMs: number
  /** Ceiling on heartbeats per second a host receives from the whole cluster. */
  maxAdvertsPerSecond: number
  /** Changes within this window are coalesced into one advert (the first goes out at once). */
  publishDebounceMs: number
  /**
   * The window doubles with every window a burst of changes fills, up to this: a host whose
   * ledger changes many times a second publishes a few adverts a second, not one per window.
   */
  publishDebounceMaxMs: number
  /** A host not heard for this many of its own heartbeat periods becomes suspect (backup detector). */
  suspectAfterHeartbeats: number
  /** How often a suspect is pinged directly. */
  probeIntervalMs: number
  /**
   * Member probing: how often this host pings one connected host it has not heard from for this
   * long (0: never). Finds silent hosts long before their missed heartbeats do.
   */
  memberProbeIntervalMs: number
  probeTimeoutMs: number
  suspicionMult: number
  suspicionMaxTimeoutMult: number
  /** Confirmations (distinct reporters + failed probes) that bring the suspicion timeout to its minimum. */
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
  /**
   * How often a host dials one host it declared dead (0: never), so that the halves of a healed
   * partition meet again (Serf's reconnect_interval).
   */
  reconnectIntervalMs: number
  /** How long a dead host is tried again before it counts as gone for good (Serf's reconnect_timeout). */
  reconnectTimeoutMs: number
}

/** One data centre: ~0.1–1 ms RTT, failure detection in a few seconds. */
export const LAN_TIMING: Readonly<MeshTiming> = Object.freeze({
  heartbeatIntervalMs: 15_000,
  maxAdvertsPerSecond: 13,
  publishDebounceMs: 50,
  publishDebounceMaxMs: 2000,
  suspectAfterHeartbeats: 2,
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  memberProbeIntervalMs: 2000,
  suspicionMult: 1,
  suspicionMaxTimeoutMult: 4,
  expectedConfirmations: 3,
  deadRetentionMs: 10 * 60_000,
  gossipHeartbeatMs: 1000,
  connectIntervalMs: 2000,
  targetPeers: 8,
  bootstrapDelayMs: 10,
  reconnectIntervalMs: 30_000,
  reconnectTimeoutMs: 24 * 3600_000
})

/** Sites over a WAN: 10–100 ms RTT and packet loss; slower to call a host dead. */
export const WAN_TIMING: Readonly<MeshTiming> = Object.freeze({
  ...LAN_TIMING,
  maxAdvertsPerSecond: 7,
  publishDebounceMs: 200,
  publishDebounceMaxMs: 4000,
  suspectAfterHeartbeats: 3,
  probeIntervalMs: 2000,
  probeTimeoutMs: 3000,
  memberProbeIntervalMs: 5000,
  suspicionMult: 2,
  suspicionMaxTimeoutMult: 6,
  connectIntervalMs: 5000
})

/** Tests on loopback: everything ~5–10× faster, so liveness tests take a second or two. */
export const LOCAL_TEST_TIMING: Readonly<MeshTiming> = Object.freeze({
  ...LAN_TIMING,
  heartbeatIntervalMs: 500,
  publishDebounceMs: 10,
  publishDebounceMaxMs: 500,
  probeIntervalMs: 200,
  probeTimeoutMs: 200,
  memberProbeIntervalMs: 1000,
  suspicionMaxTimeoutMult: 3,
  deadRetentionMs: 60_000,
  gossipHeartbeatMs: 200,
  connectIntervalMs: 300,
  reconnectIntervalMs: 1000,
  reconnectTimeoutMs: 60_000
})

export const TIMING_PRESETS = Object.freeze({ lan: LAN_TIMING, wan: WAN_TIMING, local: LOCAL_TEST_TIMING })
export type TimingPreset = keyof typeof TIMING_PRESETS
