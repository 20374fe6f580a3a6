/**
 * `npm run bench -- scale-model`: the mesh's gossip and liveness protocols as a discrete-event
 * model in virtual time (bench/src/scale-model/), calibrated against bench/results/gossip.json at
 * N = 50 and 100, then run at 100, 1,000 and 10,000 hosts on a LAN, with and without 1 % loss,
 * idle and under churn. No sockets, no timers: every figure comes out of the model (or, where
 * said, out of model-measured rates multiplied by counts; see details.method).
 */
import type { Benchmark, Metric } from './harness.js'
import { calibrate, readMeasured, type CalibrationRow } from './scale-model/calibration.js'
import { falseDeadPerHour, refutationRace } from './scale-model/false-dead.js'
import {
  ADVERT_BYTES, BACKGROUND_TASK_MS, COPY_MS, ENVELOPE_BYTES, FIRST_COPY_MS, ID_BYTES, LAN_LATENCY_MS, LOOPBACK_LATENCY_MS, NOTICE_BYTES,
  TCP_MIN_RTO_MS, TIMING, heartbeatMs
} from './scale-model/params.js'
import { convergence, detection, idleLoad, silentDetection, topologyOf, type Setup } from './scale-model/scenarios.js'
import type { LinkModel } from './scale-model/network.js'
import { VIEW_PAGE_BYTES } from '@meshvirt/mesh'

const LOSS = 0.01
/** Hosts restarting per minute, as a fraction of the cluster. */
const CHURN_PER_MIN = 0.01
/** The design variant's monitors per host (only they run the missed-heartbeat detector). */
const MONITORS = 3
/** The agent's default heartbeat until 2026-12-05 (now the LAN preset's 2 s): what 1 s would cost. */
const ONE_SECOND_HEARTBEAT_MS = 1000
/**
 * The DESIGN.md variant "adverts per failure domain with cluster summaries": heartbeats on a
 * domain topic of this many hosts (so spaced as for 100 hosts), plus one summary per domain
 * every DOMAIN_SUMMARY_MS on the cluster topic. Computed from the N = 100 simulation, not simulated at 10,000.
 */
const DOMAIN_SIZE = 100
const DOMAIN_SUMMARY_MS = 2000

interface Plan { ns: number[], seeds: number, rounds: (n: number) => number, kills: number, idleSamples: (n: number) => number, lossySamples: (n: number) => number, races: (n: number) => number }
const FULL: Plan = {
  ns: [100, 1000, 10_000], seeds: 7, kills: 3,
  rounds: (n) => n >= 10_000 ? 20 : 50,
  idleSamples: (n) => n >= 10_000 ? 60 : 200,
  lossySamples: (n) => n >= 10_000 ? 12 : 60,
  races: (n) => n >= 10_000 ? 12 : 40
}
const QUICK: Plan = { ns: [100, 1000], seeds: 3, kills: 1, rounds: () => 20, idleSamples: () => 40, lossySamples: () => 10, races: () => 8 }

const r1 = (x: number): number => Math.round(x * 10) / 10
const r3 = (x: number): number => Number(x.toPrecision(3))
const link = (loss: number, mode: LinkModel['lossMode']): LinkModel => ({ latencyMs: LAN_LATENCY_MS, loss, lossMode: mode, rtoMs: TCP_MIN_RTO_MS })

export const scaleModel: Benchmark = {
  name: 'scale-model',
  description: 'gossip and liveness at 1,000 and 10,000 hosts: a discrete-event model calibrated against the gossip bench',
  async run ({ quick, log }) {
    const plan = quick ? QUICK : FULL
    const metrics: Record<string, Metric> = {}
    const measured = readMeasured()
    const calibration = calibrate(measured, plan.seeds, log)
    logCalibration(calibration, log)
    for (const row of calibration) {
      metrics[`model_${row.key}`] = { value: r3(row.model), unit: row.metric === 'failure_detection_s' ? 's' : 'ms' }
      metrics[`calibration_error_pct_${row.key}`] = { value: r1(row.relativeError * 100), unit: '%', ...(row.key.includes('processes') ? {} : { target: '≤ 25 (abs)' }) }
    }

    const perN: Record<string, unknown> = {}
    const flows: string[] = []
    let msgs100: number | undefined
    for (const n of plan.ns) {
      const t0 = Date.now()
      const base: Setup = { n, seed: 1, hub: false, advertBytes: ADVERT_BYTES, heartbeatMs: heartbeatMs(n), link: link(0, 'retransmit'), cpu: { cores: 'per-host', backgroundUtilisation: 0, backgroundTaskMs: FIRST_COPY_MS } }
      const topo = topologyOf(base)
      const idle0 = idleLoad(base, plan.idleSamples(n), ENVELOPE_BYTES, ID_BYTES, topo)
      // Each host's own idle work (its share of heartbeats and IHAVEs) loads its loop while it forwards news.
      const rho = Math.min(0.9, (idle0.heartbeatsPerHostS * (FIRST_COPY_MS + (idle0.dataCopiesPerDelivery - 1) * COPY_MS) + idle0.ihavePerHostS * COPY_MS) / 1000)
      const s: Setup = { ...base, cpu: { ...base.cpu, backgroundUtilisation: rho } }
      const conv = convergence(s, plan.rounds(n), topo)
      const det = detection(s, plan.kills, topo)
      const convRetransmit = convergence({ ...s, link: link(LOSS, 'retransmit') }, plan.rounds(n), topo)
      const lossy: Setup = { ...s, link: link(LOSS, 'drop') }
      const convDrop = convergence(lossy, Math.ceil(plan.rounds(n) / 2), topo)
      const idleDrop = idleLoad(lossy, plan.lossySamples(n), ENVELOPE_BYTES, ID_BYTES, topo)
      const race = refutationRace(lossy, topo, plan.races(n))
      const raceBefore = refutationRace(lossy, topo, plan.races(n), 'incarnation-only')
      const fd = falseDeadPerHour(lossy, idleDrop.missRate, idleDrop.deliveriesSampled, race)
      const silent = silentDetection(s, 'all', topo)
      const silentNoSlack = silentDetection(s, 'all', topo, false, false)
      const silentVariant = silentDetection(s, MONITORS, topo, true, false)
      const silentHeartbeats = silentDetection(s, 'all', topo, true, false)
      // Churn: each restart is a kill (its direct peers' notices) and a return (a new incarnation's first advert, flooded).
      const noticesPerKill = det.runs.reduce((a, r) => a + r.noticesPublished, 0) / det.runs.length
      const restartsPerS = (CHURN_PER_MIN * n) / 60
      // … and its view sync: one pull of every advert from one peer (a request and an answer per page).
      const pullBytes = n * ADVERT_BYTES
      const pullMsgs = 2 * Math.ceil(pullBytes / VIEW_PAGE_BYTES)
      const churnMsgs = restartsPerS * ((noticesPerKill + 1) * conv.copiesPerDelivery + pullMsgs / n)
      const churnBytes = restartsPerS * (conv.copiesPerDelivery * (noticesPerKill * (NOTICE_BYTES + ENVELOPE_BYTES) + ADVERT_BYTES + ENVELOPE_BYTES) + pullBytes / n)
      const oneSecondHb = heartbeatMs(n, { heartbeatIntervalMs: ONE_SECOND_HEARTBEAT_MS, maxAdvertsPerSecond: TIMING.maxAdvertsPerSecond })
      const oneSecondMsgs = idle0.msgsPerHostS - idle0.heartbeatsPerHostS * (idle0.dataCopiesPerDelivery + idle0.controlPerDelivery) + ((n - 1) / (oneSecondHb / 1000)) * (idle0.dataCopiesPerDelivery + idle0.controlPerDelivery)
      if (n === 100) msgs100 = idle0.msgsPerHostS

      metrics[`convergence_p99_ms_${n}`] = { value: r1(conv.p99Ms), unit: 'ms', ...(n === 10_000 ? { target: '< 300' } : {}) }
      metrics[`convergence_p99_ms_${n}_loss1_tcp`] = { value: r1(convRetransmit.p99Ms), unit: 'ms' }
      metrics[`convergence_p99_ms_${n}_loss1_drop`] = { value: r1(convDrop.p99Ms), unit: 'ms' }
      metrics[`failure_detection_s_${n}`] = { value: r3(det.medianDeadAllMs / 1000), unit: 's', ...(n === 10_000 ? { target: '< 5' } : {}) }
      metrics[`silent_failure_detection_s_${n}`] = { value: r3(silent.deadAllMs / 1000), unit: 's' }
      metrics[`silent_failure_notices_${n}`] = { value: silent.noticesPublished, unit: 'notices' }
      metrics[`silent_failure_detection_s_${n}_heartbeats_only`] = { value: r3(silentHeartbeats.deadAllMs / 1000), unit: 's' }
      metrics[`silent_failure_notices_${n}_heartbeats_only`] = { value: silentHeartbeats.noticesPublished, unit: 'notices' }
      metrics[`silent_failure_detection_s_${n}_no_slack`] = { value: r3(silentNoSlack.deadAllMs / 1000), unit: 's' }
      metrics[`silent_failure_notices_${n}_no_slack`] = { value: silentNoSlack.noticesPublished, unit: 'notices' }
      metrics[`silent_failure_detection_s_${n}_monitors${MONITORS}`] = { value: r3(silentVariant.deadAllMs / 1000), unit: 's' }
      metrics[`silent_failure_notices_${n}_monitors${MONITORS}`] = { value: silentVariant.noticesPublished, unit: 'notices' }
      metrics[`msgs_per_host_s_${n}`] = { value: r1(idle0.msgsPerHostS), unit: 'msg/s', ...(n === 10_000 && msgs100 !== undefined ? { target: `≤ ${r1(2 * msgs100)}` } : {}) }
      metrics[`msgs_per_host_s_${n}_heartbeat_1s`] = { value: r1(oneSecondMsgs), unit: 'msg/s' }
      metrics[`bytes_per_host_s_${n}`] = { value: Math.round(idle0.bytesPerHostS), unit: 'B/s' }
      metrics[`cpu_pct_per_host_idle_${n}`] = { value: r1(rho * 100), unit: '%' }
      metrics[`msgs_per_host_s_churn_${n}`] = { value: r1(idle0.msgsPerHostS + churnMsgs), unit: 'msg/s' }
      metrics[`bytes_per_host_s_churn_${n}`] = { value: Math.round(idle0.bytesPerHostS + churnBytes), unit: 'B/s' }
      metrics[`view_sync_bytes_per_join_${n}`] = { value: pullBytes, unit: 'B' }
      metrics[`false_dead_per_hour_${n}`] = { value: r3(fd.falseDeadPerHour), unit: '/h', ...(n === 10_000 ? { target: '0' } : {}) }
      metrics[`false_dead_per_hour_upper95_${n}`] = { value: r3(fd.falseDeadPerHourUpper), unit: '/h' }
      metrics[`false_dead_observers_per_false_notice_${n}`] = { value: r3(race.falseDeadObservers / race.trials), unit: 'hosts' }
      metrics[`false_dead_observers_per_false_notice_${n}_incarnation_only`] = { value: r3(raceBefore.falseDeadObservers / raceBefore.trials), unit: 'hosts' }

      if (silent.noticesPublished > 10 * MONITORS) flows.push(`N=${n}: a silent failure makes ${silent.noticesPublished} hosts probe the suspect and publish a notice each (${silentNoSlack.noticesPublished} without the per-host slack on the missed-heartbeat deadline)`)
      if (heartbeatMs(n) > TIMING.heartbeatIntervalMs) flows.push(`N=${n}: heartbeats spaced to ${heartbeatMs(n) / 1000} s (≤ ${TIMING.maxAdvertsPerSecond}/s per host): idle load stays flat; the backup detector alone would need 2 heartbeats (a silent failure in ${(silentHeartbeats.deadAllMs / 1000).toFixed(0)} s), member probing finds it in ${(silent.deadAllMs / 1000).toFixed(1)} s`)
      if (race.falseDeadObservers > 0) flows.push(`N=${n}: a false notice still gets a live host declared dead: ${race.falseDeadObservers} observers over ${race.trials} races`)
      if (raceBefore.falseDeadObservers > 0) flows.push(`N=${n}: with the rule before (suspect() ignoring only older incarnations, not older seq) ${raceBefore.falseDeadObservers} observers over ${raceBefore.trials} races would have declared a live host dead; the seq rule: ${race.falseDeadObservers}`)
      flows.push(`N=${n}: churn of ${CHURN_PER_MIN * 100} %/min adds ${r1(churnMsgs)} msg/s per host (every host hears every restart: O(N) per host)`)
      if (pullBytes > VIEW_PAGE_BYTES * 8) flows.push(`N=${n}: a newcomer's view sync is ${(pullBytes / 2 ** 20).toFixed(1)} MiB from one peer (what one heartbeat period of every host's adverts would bring it), served by whichever peer it met first`)
      perN[String(n)] = {
        setup: { heartbeatMs: s.heartbeatMs, latencyMs: LAN_LATENCY_MS, perHostIdleUtilisation: rho, avgPeers: conv.avgPeers, avgMesh: conv.avgMesh },
        convergence: conv, convergenceLoss1Tcp: convRetransmit, convergenceLoss1Drop: convDrop,
        detection: det, silent, silentHeartbeats, silentNoSlack, silentVariant, idle: idle0, idleLoss1Drop: idleDrop, falseDead: fd, raceIncarnationOnly: raceBefore,
        churn: { restartsPerS, noticesPerKill, viewSyncBytesPerJoin: pullBytes, viewSyncMsgsPerJoin: pullMsgs, msgsPerHostS: churnMsgs, bytesPerHostS: churnBytes },
        wallMs: Date.now() - t0
      }
      log(`N=${n}: convergence p99 ${conv.p99Ms.toFixed(1)} ms (1 % loss: tcp ${convRetransmit.p99Ms.toFixed(0)} ms, drop ${convDrop.p99Ms.toFixed(0)} ms); killed host dead everywhere in ${(det.medianDeadAllMs / 1000).toFixed(2)} s; silent ${(silent.deadAllMs / 1000).toFixed(1)} s with ${silent.noticesPublished} notices (heartbeats only: ${(silentHeartbeats.deadAllMs / 1000).toFixed(1)} s; ${MONITORS} monitors: ${(silentVariant.deadAllMs / 1000).toFixed(1)} s, ${silentVariant.noticesPublished}); idle ${idle0.msgsPerHostS.toFixed(0)} msg/s, ${(idle0.bytesPerHostS / 1024).toFixed(1)} KiB/s per host; false dead ${fd.falseDeadPerHour.toPrecision(2)}/h (≤ ${fd.falseDeadPerHourUpper.toPrecision(2)}) — ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    }
    const domain = perN[String(DOMAIN_SIZE)] as { silentVariant: { deadAllMs: number }, idle: { heartbeatsPerHostS: number, dataCopiesPerDelivery: number, ihavePerHostS: number } } | undefined
    const big = perN['10000'] as { idle: { dataCopiesPerDelivery: number } } | undefined
    if (domain !== undefined && big !== undefined) {
      const perS = domain.idle.heartbeatsPerHostS + (10_000 / DOMAIN_SIZE) / (DOMAIN_SUMMARY_MS / 1000)
      metrics.msgs_per_host_s_10000_domains = { value: r1(perS * big.idle.dataCopiesPerDelivery + 2 * domain.idle.ihavePerHostS), unit: 'msg/s' }
      metrics.silent_failure_detection_s_10000_domains = { value: r3((domain.silentVariant.deadAllMs + DOMAIN_SUMMARY_MS) / 1000), unit: 's' }
      log(`variant (computed): domains of ${DOMAIN_SIZE} with ${MONITORS} monitors and a summary every ${DOMAIN_SUMMARY_MS / 1000} s: ${metrics.msgs_per_host_s_10000_domains.value} msg/s per host, silent failure known cluster-wide in ${metrics.silent_failure_detection_s_10000_domains.value} s`)
    }
    for (const f of flows) log(`does not scale: ${f}`)
    return {
      metrics,
      details: {
        fitted: { copyMs: COPY_MS, firstCopyMs: FIRST_COPY_MS, backgroundTaskMs: BACKGROUND_TASK_MS, loopbackLatencyMs: LOOPBACK_LATENCY_MS, lanLatencyMs: LAN_LATENCY_MS },
        timing: { preset: 'LAN_TIMING (packages/mesh/src/timing.ts), the agent default; a 1 s heartbeat (its default until 2026-12-05): *_heartbeat_1s', ...TIMING },
        calibration,
        perN,
        flowsThatDoNotScale: flows,
        method: [
          'simulated message by message: convergence rounds, kills (probes, notices, suspicion timers), silent failures, sampled heartbeats, refutation races',
          'computed from simulated rates: idle msgs and bytes per host = heartbeat rate (N-1)/period × copies per delivery measured on sampled heartbeats + IHAVEs per gossip heartbeat; churn = restarts/s × ((notices per kill + 1 advert) × copies per delivery + each view sync of a newcomer (N adverts in pages, one peer) / N)',
          'false dead per hour = N(N-1) × heartbeats/h × (missed-heartbeat rate)² × P(probe fails) × P(false dead | false notice); with no miss seen, the 95 % upper bound uses 3/deliveries sampled',
          `loss: tcp = 1 % of segments retransmitted after ${TCP_MIN_RTO_MS} ms (what TCP does); drop = 1 % of messages lost outright (pessimistic), repaired by IHAVE/IWANT`
        ]
      }
    }
  }
}

function logCalibration (rows: CalibrationRow[], log: (line: string) => void): void {
  log('calibration (model vs bench/results/gossip.json):')
  for (const r of rows) log(`  ${r.key.padEnd(36)} measured ${String(r3(r.measured)).padStart(7)}  model ${r.model.toFixed(r.metric === 'failure_detection_s' ? 2 : 1).padStart(7)}  error ${(r.relativeError * 100).toFixed(0).padStart(4)} %`)
}
