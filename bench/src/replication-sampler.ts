/**
 * What the replication benchmark reads from a running agent: the owner's `vm show` (inspectVm over its
 * control socket, as `meshvirt vm show NAME --json` does) polled at a fixed rate, and the figures made
 * from it — each holder's lag (now − taken-at of the point it holds: the recovery point a failover at
 * that instant would give), the guest pause of each point the owner took, point sizes from the bytes
 * sent, and the CPU the processes spent meanwhile.
 */
import { loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import type { VmView } from '@meshvirt/agent'
import { percentile } from './harness.js'
import { cpuSeconds, inspect, type Agent } from './failover-cluster.js'

export interface LagSample { atMs: number, holder: string, state: string, seq: number, lagMs: number | null, sentBytes: number }
export interface PauseSample { point: number, pauseMs: number }

export interface Sampling {
  lags: LagSample[]
  /** The pause of each point the owner took while sampling (lastPauseMs read after `points` moved). */
  pauses: PauseSample[]
  /** Polls that failed or came back late (> 2 intervals): the sampler missed its rate. */
  missedPolls: number
  first: VmView
  last: VmView
  durationMs: number
  /** CPU seconds each watched process used over the window. */
  cpuS: Record<string, number>
  load1m: number[]
}

/**
 * Samples the owner's view of `vm` every `intervalMs` for `durationMs` (fixed rate: a slow poll does
 * not shift the next ones). `processes`: name → pid whose CPU use over the window is reported.
 */
export async function sampleReplication (owner: Agent, vm: string, opts: { durationMs: number, intervalMs: number, processes: Record<string, number> }): Promise<Sampling> {
  const cpu0 = Object.fromEntries(Object.entries(opts.processes).map(([k, pid]) => [k, cpuSeconds(pid) ?? 0]))
  const first = await inspect(owner, vm, 3000)
  const lags: LagSample[] = []
  const pauses: PauseSample[] = []
  const load1m: number[] = [loadavg()[0] as number]
  let points = first.replication?.points ?? 0
  let last = first
  let missedPolls = 0
  const t0 = performance.now()
  const wall0 = Date.now()
  for (let i = 1; ; i++) {
    const due = t0 + i * opts.intervalMs
    if (due - t0 > opts.durationMs) break
    const wait = due - performance.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    else if (-wait > opts.intervalMs) { missedPolls++; continue }
    const v = await inspect(owner, vm, 2 * opts.intervalMs).catch(() => undefined)
    if (v?.replication === undefined) { missedPolls++; continue }
    const at = Date.now() - wall0
    for (const h of v.replication.holders) lags.push({ atMs: at, holder: h.hostId, state: h.state, seq: h.seq, lagMs: h.lagMs, sentBytes: h.sentBytes })
    if (v.replication.points !== points) {
      points = v.replication.points
      pauses.push({ point: points, pauseMs: v.replication.lastPauseMs })
    }
    if (i % Math.max(1, Math.round(5000 / opts.intervalMs)) === 0) load1m.push(loadavg()[0] as number)
    last = v
  }
  const durationMs = performance.now() - t0
  const cpuS = Object.fromEntries(Object.entries(opts.processes).map(([k, pid]) => [k, (cpuSeconds(pid) ?? 0) - (cpu0[k] ?? 0)]))
  return { lags, pauses, missedPolls, first, last, durationMs, cpuS, load1m }
}

const round = (v: number, digits: number): number => Number.isFinite(v) ? Number(v.toFixed(digits)) : Number.NaN

export interface CaseFigures {
  lag_p50_s: number
  lag_p99_s: number
  lag_max_s: number
  lag_min_s: number
  /** Per holder (by name): p50/p99/max in seconds. */
  per_holder: Record<string, { p50_s: number, p99_s: number, max_s: number, samples: number, states: Record<string, number> }>
  samples: number
  /** Samples with no point yet (lag null) or a state other than in-sync. */
  not_in_sync_samples: number
  points: number
  point_interval_s: number
  pause_ms_p50: number
  pause_ms_max: number
  /** Bytes sent to a holder per point it applied, averaged over the window (what each incremental carries). */
  point_kib_mean: number
  missed_polls: number
  cpu_s_per_s: Record<string, number>
  load_1m: { min: number, max: number }
}

/** The figures of one sampling window; `names` maps host ids to agent names. */
export function caseFigures (s: Sampling, names: (hostId: string) => string): CaseFigures {
  const lagS = s.lags.filter((l) => l.lagMs !== null).map((l) => (l.lagMs as number) / 1000)
  const holders = [...new Set(s.lags.map((l) => l.holder))]
  const perHolder = Object.fromEntries(holders.map((h) => {
    const mine = s.lags.filter((l) => l.holder === h)
    const v = mine.filter((l) => l.lagMs !== null).map((l) => (l.lagMs as number) / 1000)
    const states: Record<string, number> = {}
    for (const l of mine) states[l.state] = (states[l.state] ?? 0) + 1
    return [names(h), { p50_s: round(percentile(v, 50), 2), p99_s: round(percentile(v, 99), 2), max_s: round(Math.max(...v), 2), samples: v.length, states }]
  }))
  const pointKib = holders.map((h) => {
    const first = s.first.replication?.holders.find((x) => x.hostId === h)
    const last = s.last.replication?.holders.find((x) => x.hostId === h)
    if (first === undefined || last === undefined || last.seq <= first.seq) return Number.NaN
    return (last.sentBytes - first.sentBytes) / (last.seq - first.seq) / 1024
  }).filter((v) => Number.isFinite(v))
  const points = (s.last.replication?.points ?? 0) - (s.first.replication?.points ?? 0)
  const pauses = s.pauses.map((p) => p.pauseMs)
  return {
    lag_p50_s: round(percentile(lagS, 50), 2),
    lag_p99_s: round(percentile(lagS, 99), 2),
    lag_max_s: round(Math.max(...lagS), 2),
    lag_min_s: round(Math.min(...lagS), 2),
    per_holder: perHolder,
    samples: lagS.length,
    not_in_sync_samples: s.lags.filter((l) => l.lagMs === null || l.state !== 'in-sync').length,
    points,
    point_interval_s: round(s.durationMs / 1000 / Math.max(1, points), 2),
    pause_ms_p50: round(percentile(pauses, 50), 1),
    pause_ms_max: round(Math.max(...pauses), 1),
    point_kib_mean: round(pointKib.reduce((a, b) => a + b, 0) / Math.max(1, pointKib.length), 0),
    missed_polls: s.missedPolls,
    cpu_s_per_s: Object.fromEntries(Object.entries(s.cpuS).map(([k, v]) => [k, round(v / (s.durationMs / 1000), 2)])),
    load_1m: { min: round(Math.min(...s.load1m), 2), max: round(Math.max(...s.load1m), 2) }
  }
}
