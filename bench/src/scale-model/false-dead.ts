/**
 * Hosts wrongly declared dead, under loss. A live host can only be declared dead through a
 * suspicion notice (cluster-view.ts: heartbeats only ever revive), and a notice about a live
 * host needs a failed probe: after missed heartbeats (the backup detector) or a dropped
 * connection. So the rate is (false notices per hour) × (hosts that end up declaring the
 * subject dead per false notice), and both factors are measured on the model:
 *
 * - missed heartbeats: the fraction of sampled heartbeat deliveries not received within one
 *   heartbeat period (scenarios.ts idleLoad, with loss and IHAVE repair); two in a row
 *   (suspectAfterHeartbeats = 2), assumed independent, for every ordered pair of hosts;
 * - a probe that fails although the host is up: under 'drop' a lost ping or answer;
 * - member probing: each host pings one connected host per memberProbeIntervalMs; two failed in a row
 *   (each lost as above) make a false notice, whatever the heartbeats did;
 * - per false notice (`refutationRace`): the notice is flooded; the subject refutes with a newer
 *   advert as soon as it processes the notice (mesh-node.ts: `view.suspect(...) === 'refute'` →
 *   `publishSoon`). A host declares it dead if the refutation comes later than its suspicion
 *   timeout with one reporter. Where the refutation overtook the notice, cluster-view.ts
 *   `suspect()` ignores the notice (it is about an older seq than the host holds). Until that rule
 *   (rule 'incarnation-only', kept to show what it bought), such a notice made a live host suspect
 *   again, and only the subject's next heartbeat (one heartbeat period later: 100 s at 10,000
 *   hosts) could revive it in time.
 */
import { remainingSuspicionTimeMs } from '@meshvirt/mesh'
import { GossipSim } from './gossip.js'
import { Cpu, Network } from './network.js'
import { gossipParams, livenessParams, NOTICE_BYTES, TIMING } from './params.js'
import { Random } from './random.js'
import type { Setup } from './scenarios.js'
import type { Topology } from './topology.js'

export interface RaceResult {
  trials: number
  /** Trials in which at least one host declared the live subject dead. */
  trialsWithFalseDead: number
  /** Hosts (observers) that declared it dead, over all trials. */
  falseDeadObservers: number
  /** Hosts that got the refutation before the notice, over all trials. */
  overtaken: number
  /** Suspicion timeout with one reporter, and the subject's heartbeat period. */
  oneReporterTimeoutMs: number
  heartbeatMs: number
}

/** How `ClusterView.suspect()` treats a notice older than the advert held: today's rule, or the one before. */
export type StaleNoticeRule = 'seq' | 'incarnation-only'

export function refutationRace (s: Setup, topo: Topology, trials: number, rule: StaleNoticeRule = 'seq'): RaceResult {
  const lp = livenessParams(s.n, s.heartbeatMs, s.copyMs)
  const timeout = remainingSuspicionTimeMs(1, lp.expectedConfirmations, 0, lp.minTimeoutMs, lp.maxTimeoutMs)
  const rng = new Random(s.seed + 71)
  let withFalse = 0
  let observers = 0
  let overtaken = 0
  for (let k = 0; k < trials; k++) {
    const simRng = new Random(s.seed * 31 + k)
    const sim = new GossipSim(topo, gossipParams(s.link.lossMode === 'drop' && s.link.loss > 0, s.copyMs), new Cpu(s.n, s.cpu, simRng), new Network(s.link, simRng), simRng)
    const subject = rng.int(s.n)
    const reporter = (topo.peers[subject] as number[])[rng.int((topo.peers[subject] as number[]).length)] as number
    const t0 = 1000
    const notice = sim.publish(reporter, t0, true, NOTICE_BYTES)
    let refutation = -1
    sim.onSeen = (msg, host, t) => {
      if (msg === notice && host === subject && refutation < 0) refutation = sim.publish(subject, t, true, s.advertBytes)
    }
    sim.run(t0 + timeout + 5000)
    const noticeAt = (sim.messages[notice] as { seenAt: Float64Array }).seenAt
    const refuteAt = refutation < 0 ? undefined : (sim.messages[refutation] as { seenAt: Float64Array }).seenAt
    // The subject's next heartbeat: one period (±10 %) after the refutation reset its timer.
    const nextHeartbeat = (refuteAt?.[subject] ?? Infinity) + s.heartbeatMs * rng.uniform(0.9, 1.1)
    let here = 0
    for (let h = 0; h < s.n; h++) {
      if (h === subject) continue
      const n = noticeAt[h] as number
      if (!Number.isFinite(n)) continue
      const r = refuteAt?.[h] ?? Infinity
      if (r <= n) {
        overtaken++
        if (rule === 'seq') continue
      }
      const revivedBy = r > n ? r : nextHeartbeat
      if (revivedBy > n + timeout) here++
    }
    observers += here
    if (here > 0) withFalse++
  }
  return { trials, trialsWithFalseDead: withFalse, falseDeadObservers: observers, overtaken, oneReporterTimeoutMs: timeout, heartbeatMs: s.heartbeatMs }
}

export interface FalseDeadEstimate {
  falseNoticesPerHour: number
  /** 95 % upper bound when no miss was seen (rule of three). */
  falseNoticesPerHourUpper: number
  falseDeadPerHour: number
  falseDeadPerHourUpper: number
  race: RaceResult
  missRate: number
  deliveriesSampled: number
  probeFailure: number
}

/** Combines the sampled miss rate and the simulated races into hosts wrongly declared dead per hour. */
export function falseDeadPerHour (s: Setup, missRate: number, deliveriesSampled: number, race: RaceResult): FalseDeadEstimate {
  const q = missRate
  const qUpper = missRate > 0 ? missRate : 3 / deliveriesSampled
  const probeFailure = s.link.lossMode === 'drop' ? 1 - (1 - s.link.loss) ** 2 : 0
  const pairsPerHour = s.n * (s.n - 1) * (3_600_000 / s.heartbeatMs)
  // Member probing: every host pings one host per period, and two lost pings in a row report it.
  const memberMs = TIMING.memberProbeIntervalMs
  const memberNotices = memberMs > 0 ? s.n * (3_600_000 / memberMs) * probeFailure * probeFailure : 0
  const notices = pairsPerHour * q * q * probeFailure + memberNotices
  const noticesUpper = pairsPerHour * qUpper * qUpper * probeFailure + memberNotices
  const pDead = race.trialsWithFalseDead / race.trials
  const pDeadUpper = race.trialsWithFalseDead > 0 ? pDead : 3 / race.trials
  return {
    falseNoticesPerHour: notices, falseNoticesPerHourUpper: noticesUpper, falseDeadPerHour: notices * pDead,
    falseDeadPerHourUpper: noticesUpper * pDeadUpper, race, missRate, deliveriesSampled, probeFailure
  }
}
