/**
 * The benchmark convention of docs/benchmarks.md: every benchmark prints a human table and writes
 * `bench/results/NAME.json` = {name, date, machine: {cpus, memory, accel, node, qemu}, metrics:
 * {KEY: {value, unit, target}}, details}. Benchmarks print figures; they never assert.
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface Metric {
  value: number
  unit: string
  /** The goal as docs/benchmarks.md states it, e.g. "< 300" or "≥ 1000"; omitted when we only report. */
  target?: string
}

export interface BenchOutput {
  metrics: Record<string, Metric>
  details?: Record<string, unknown>
  /** Accelerator the measured guests ran on, when the benchmark boots guests. */
  accel?: string
  /**
   * A partial run (an environment variable picked one part): its results go to
   * `NAME-VARIANT.json`, never over the recorded full run's `NAME.json`.
   */
  variant?: string
}

export interface Benchmark {
  name: string
  description: string
  run: (opts: { quick: boolean, log: (line: string) => void }) => Promise<BenchOutput>
}

export interface BenchResult {
  name: string
  date: string
  machine: { cpus: number, memory: number, accel: string, node: string, qemu: string }
  metrics: Record<string, Metric>
  details: Record<string, unknown>
}

/** The repository's root (bench/dist/… → ../..). */
export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const RESULTS_DIR = join(REPO, 'bench', 'results')

/** A benchmark's host in its own process (as each host's agent is), driven over IPC. */
export interface HostProcess<Req> { name: string, proc: ChildProcess, hostId: string, addr: string, call: <T = unknown>(req: Req) => Promise<T> }

/**
 * Forks `script` with `env` and waits for its ready message. The protocol: requests go out as
 * `{seq, req}`, answers come back as `{seq, ok, result?, error?}`; seq 0 is the ready message,
 * whose result is `{hostId, addr}`. Pending calls fail when the process exits. With `netns`, the
 * script runs inside that network namespace (`ip netns exec` execs node in place: the IPC channel
 * and the pid are node's).
 */
export async function forkHost<Req> (script: URL, name: string, env: Record<string, string>, opts: { netns?: string } = {}): Promise<HostProcess<Req>> {
  const options = { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] as Array<'ignore' | 'inherit' | 'ipc'> }
  const proc = opts.netns === undefined
    ? fork(fileURLToPath(script), [], options)
    : spawn('ip', ['netns', 'exec', opts.netns, process.execPath, fileURLToPath(script)], options)
  const pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  let seq = 0
  const ready = new Promise<{ hostId: string, addr: string }>((resolve, reject) => {
    pending.set(0, { resolve: (v) => { resolve(v as { hostId: string, addr: string }) }, reject })
    proc.once('exit', (code) => { for (const p of pending.values()) p.reject(new Error(`host ${name} exited with ${String(code)}`)) })
  })
  proc.on('message', (m: { seq: number, ok: boolean, result?: unknown, error?: string }) => {
    const p = pending.get(m.seq)
    pending.delete(m.seq)
    if (m.ok) p?.resolve(m.result); else p?.reject(new Error(`host ${name}: ${m.error ?? 'failed'}`))
  })
  const { hostId, addr } = await ready
  const call = async <T = unknown>(req: Req): Promise<T> => await new Promise<T>((resolve, reject) => {
    const n = ++seq
    pending.set(n, { resolve: (v) => { resolve(v as T) }, reject })
    proc.send({ seq: n, req })
  })
  return { name, proc, hostId, addr, call }
}

export function qemuVersion (): string {
  try {
    const out = execFileSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8', timeout: 5000 })
    return /version ([\d.]+)/.exec(out)?.[1] ?? 'unknown'
  } catch {
    return 'not installed'
  }
}

export function describeResult (bench: Benchmark, out: BenchOutput): BenchResult {
  return {
    name: out.variant === undefined ? bench.name : `${bench.name}-${out.variant}`,
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, memory: totalmem(), accel: out.accel ?? 'none', node: process.version, qemu: qemuVersion() },
    metrics: out.metrics,
    details: out.details ?? {}
  }
}

export function formatTable (result: BenchResult): string {
  const rows = Object.entries(result.metrics).map(([key, m]) => [key, formatNumber(m.value), m.unit, m.target ?? ''])
  const header = ['metric', 'value', 'unit', 'target']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => i === 1 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)).join('  ')
  return [`${result.name} — ${result.machine.cpus} cpus, node ${result.machine.node}, qemu ${result.machine.qemu}, accel ${result.machine.accel}`,
    line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

export function writeResult (result: BenchResult, dir = RESULTS_DIR): string {
  mkdirSync(dir, { recursive: true })
  const path = join(dir, `${result.name}.json`)
  writeFileSync(path, JSON.stringify(result, null, 2) + '\n')
  return path
}

function formatNumber (v: number): string {
  if (Number.isInteger(v)) return String(v)
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(3)
}

/** Percentile (nearest-rank) of a list of numbers; NaN for an empty list. */
export function percentile (values: number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank] as number
}
