/**
 * Model against measurement: the in-process gossip runs of bench/results/gossip.json (N hosts on
 * one event loop: cores = 1, that loop's measured idle CPU as background load, loopback links,
 * every host bootstrapped off host 0) and, as a check, the N-agent-process runs (cores = 2 on
 * this machine, each process's idle CPU from agent_idle_cpu_pct). The model is run with the same
 * number of rounds and kills-per-run as the bench, over several seeds; the figures are the
 * medians of the per-seed p99 (convergence) and of all kills' deadAll (detection).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { percentile, RESULTS_DIR } from '../harness.js'
import { ADVERT_BYTES, BACKGROUND_TASK_MS, LOOPBACK_LATENCY_MS, TCP_MIN_RTO_MS, TIMING, heartbeatMs } from './params.js'
import { convergence, detection, type Setup } from './scenarios.js'

/** gossip.ts PROCESS_HEARTBEATS_PER_S: the in-process bench spaces heartbeats to ~150/s for the whole process. */
const PROCESS_HEARTBEATS_PER_S = 150

export interface CalibrationRow {
  run: string
  n: number
  metric: 'convergence_p99_ms' | 'failure_detection_s'
  key: string
  measured: number
  model: number
  relativeError: number
}

type Measured = Record<string, { value: number } | undefined>

export function readMeasured (): Measured {
  try {
    return (JSON.parse(readFileSync(join(RESULTS_DIR, 'gossip.json'), 'utf8')) as { metrics: Measured }).metrics
  } catch {
    return {}
  }
}

function oneProcess (n: number, seed: number, idleCpuPctPerHost: number): Setup {
  return {
    n, seed, hub: true, advertBytes: ADVERT_BYTES,
    cpu: { cores: 1, backgroundUtilisation: Math.min(0.95, (idleCpuPctPerHost * n) / 100), backgroundTaskMs: BACKGROUND_TASK_MS },
    link: { latencyMs: LOOPBACK_LATENCY_MS, loss: 0, lossMode: 'retransmit', rtoMs: TCP_MIN_RTO_MS },
    heartbeatMs: heartbeatMs(n, { ...TIMING, maxAdvertsPerSecond: PROCESS_HEARTBEATS_PER_S / n })
  }
}

function processes (n: number, seed: number, agentIdleCpuPct: number): Setup {
  return {
    n, seed, hub: true, advertBytes: ADVERT_BYTES,
    // n processes on this machine's 2 cores, each with the measured idle CPU of one agent process.
    cpu: { cores: 2, backgroundUtilisation: Math.min(0.95, (agentIdleCpuPct * n) / 200), backgroundTaskMs: BACKGROUND_TASK_MS },
    link: { latencyMs: LOOPBACK_LATENCY_MS, loss: 0, lossMode: 'retransmit', rtoMs: TCP_MIN_RTO_MS },
    heartbeatMs: heartbeatMs(n)
  }
}

/** Rounds and kills per run, as bench/src/gossip.ts FULL and PROCESS_PLAN. */
const PLAN: Record<string, { rounds: number, kills: number }> = { 50: { rounds: 100, kills: 3 }, 100: { rounds: 20, kills: 1 }, '20_processes': { rounds: 40, kills: 2 }, '100_processes': { rounds: 40, kills: 2 } }

export function calibrate (measured: Measured, seeds: number, log: (line: string) => void): CalibrationRow[] {
  const rows: CalibrationRow[] = []
  const runs: Array<{ suffix: string, n: number, setup: (seed: number) => Setup }> = []
  for (const n of [50, 100]) {
    const idle = measured[`idle_cpu_pct_per_host_${n}`]?.value ?? 0.7
    runs.push({ suffix: String(n), n, setup: (seed) => oneProcess(n, seed, idle) })
  }
  const agentIdle = measured.agent_idle_cpu_pct?.value ?? 3
  for (const n of [20, 100]) {
    if (measured[`convergence_p99_ms_${n}_processes`] !== undefined) runs.push({ suffix: `${n}_processes`, n, setup: (seed) => processes(n, seed, agentIdle) })
  }
  for (const run of runs) {
    const plan = PLAN[run.suffix] ?? { rounds: 40, kills: 2 }
    const conv: number[] = []
    const dead: number[] = []
    for (let seed = 1; seed <= seeds; seed++) {
      const s = run.setup(seed)
      conv.push(convergence(s, plan.rounds).p99Ms)
      dead.push(...detection(s, Math.max(3, plan.kills)).runs.map((r) => r.deadAllMs))
    }
    const add = (metric: CalibrationRow['metric'], model: number): void => {
      const key = `${metric}_${run.suffix}`
      const m = measured[key]?.value
      if (m === undefined) return
      rows.push({ run: run.suffix.includes('processes') ? `${run.n} processes` : `${run.n} in one process`, n: run.n, metric, key, measured: m, model, relativeError: model / m - 1 })
    }
    add('convergence_p99_ms', percentile(conv, 50))
    add('failure_detection_s', percentile(dead, 50) / 1000)
    log(`calibration ${run.suffix}: model convergence p99 ${percentile(conv, 50).toFixed(0)} ms, detection ${(percentile(dead, 50) / 1000).toFixed(2)} s`)
  }
  return rows
}
