/**
 * migration: live migration of a running test guest with its disk between two hosts, each its own
 * process (a mesh node + a QEMU driver, see migration-host.ts), by every data path in the same run
 * and on the same guest:
 *  - tls1, tls2: QEMU straight to QEMU over loopback TCP with QEMU's TLS (tls-creds-psk, a one-time
 *            256-bit key), RAM over one stream or 2 multifd channels, the disk mirror over NBD with the
 *            same credentials; the agents' default path is the one with MIGRATION_MULTIFD_CHANNELS;
 *  - tcp, tcpmf: the same in plaintext (the baseline docs/benchmarks.md names is `tcp`, one stream): tlsN ÷ tcpN
 *            is what TLS costs, 2 channels ÷ 1 what multifd does;
 *  - tunnel: the fallback — QEMU ↔ unix ↔ libp2p stream (cluster-key pnet + noise + yamux) ↔ unix ↔ QEMU;
 *  - unix:   QEMU straight to the destination QEMU's unix sockets (no TCP at all).
 * Every path runs with the agent's default parameters (resolveMigrationParams({})); the headline case
 * also runs `tls300`: the default path with QEMU's own 300 ms limit and no auto-converge (the old defaults).
 * Cases: 128, 256 and 512 MiB guests, idle and rewriting RAM (4 MiB per 200 ms tick, ~20 MiB/s), and 1 and
 * 2 GiB guests with 75 % of their RAM filled with non-zero data (zero pages cost migration nothing), idle
 * and rewriting; each with a 64 MiB disk mirrored over NBD. The guest ping-pongs between the two hosts;
 * each round runs every path once, in a rotating order, so drift (load, the guest's state) spreads over all.
 *  - downtime_ms_256_disk: the guest's pause on the default path, 256 MiB idle + disk, median: from the
 *    source's vCPUs stopping (QMP STOP) to the destination's resuming (QMP RESUME), so it includes
 *    the disk mirror's completion and the hand-over, not only QEMU's own `downtime`.
 *  - downtime_ratio_vs_direct: that median ÷ plaintext TCP's median in the same run.
 *  - throughput_ratio_vs_plain_2g: RAM MB/s (bytes sent ÷ QEMU's RAM time) of the default path ÷ plaintext
 *    TCP's, 2 GiB filled guest; total_s_2g: the default path's whole migration of it.
 *  - <path>_downtime_ms_<case>, …_downtime_p90_ms_…, …_total_ms_…, …_mb_s_…: every case and path.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { MIGRATION_MULTIFD_CHANNELS, probeAccelerator, resolveMigrationParams, type Accelerator, type IncomingMigration, type MigrateOutOptions, type MigrationResult, type VmSpec } from '@meshvirt/hypervisor'
import { generateClusterKey } from '@meshvirt/mesh'
import type { HostInit, HostRequest } from './migration-host.js'
import { REPO, forkHost, percentile, type Benchmark, type HostProcess, type Metric } from './harness.js'
import { freePort } from './agent-processes.js'
import { ensureGuest } from '@meshvirt/testkit'

/** The agent's defaults, as `vm migrate` without flags runs; a longer timeout for the 2 GiB guests through the tunnel. */
const DEFAULTS = resolveMigrationParams({})
const PARAMS: Partial<MigrateOutOptions> = { downtimeLimitMs: DEFAULTS.downtimeLimitMs, autoConverge: DEFAULTS.autoConverge, timeoutMs: 300_000, onTimeout: 'cancel' }
/** QEMU's own defaults (and the agent's before issue 20): 300 ms, no auto-converge. */
const QEMU_DEFAULTS: Partial<MigrateOutOptions> = { ...PARAMS, downtimeLimitMs: 300, autoConverge: false }
/** TLS and plaintext TCP each with 1 stream and with 2 multifd channels; the default path is `tls<MIGRATION_MULTIFD_CHANNELS>`. */
const PATHS = ['tls1', 'tls2', 'tcp', 'tcpmf', 'tunnel', 'unix', 'tls300'] as const
type Path = typeof PATHS[number]
const DEFAULT_PATH: Path = (MIGRATION_MULTIFD_CHANNELS as number) === 1 ? 'tls1' : 'tls2'
if (MIGRATION_MULTIFD_CHANNELS > 2) throw new Error('bench migration measures 1 and 2 channels: teach it the new default')
/** Metric key prefix of each path (the default path's keys are docs/benchmarks.md's, unprefixed, besides its own prefixed ones). */
const PREFIX: Record<Path, string> = { tls1: 'tls1_', tls2: 'tls2_', tcp: 'tcp_', tcpmf: 'tcpmf_', tunnel: 'tunnel_', unix: 'unix_', tls300: 'tls300_' }
const CHANNELS: Partial<Record<Path, number>> = { tls1: 1, tls2: 2, tcp: 1, tcpmf: 2, tls300: MIGRATION_MULTIFD_CHANNELS }
const DIRTY = { label: 'dirty 4 MiB/tick', args: 'meshvirt.dirty_kib=4096 meshvirt.disk_kib=64' }
const MEMORY_MIB = [128, 256, 512]
const BIG_MIB = [1024, 2048]
/** The issue's target case: 256 MiB, idle, with its disk. It gets more rounds, so its ratio is not noise. */
const HEADLINE = { memoryMiB: 256, workload: 'idle' }
const THROUGHPUT = { memoryMiB: 2048, workload: 'idle' }

type Host = HostProcess<HostRequest>
const startHost = async (name: string, init: HostInit): Promise<Host> => await forkHost<HostRequest>(new URL('./migration-host.js', import.meta.url), name, { MV_BENCH_HOST: JSON.stringify(init) })
interface Case { memoryMiB: number, workload: string, args: string, rounds: number, paths: readonly Path[] }
interface Sample {
  path: Path, memoryMiB: number, workload: string, round: number, pauseMs: number, qemuDowntimeMs: number, totalMs: number, ramMs: number, mirrorMs: number, ramBytes: number
  /** RAM bytes sent ÷ QEMU's RAM time, MB/s (10^6 B/s). */
  mbS: number
  /** The pause, split: vCPUs stopped → QEMU completed → mirrors completed → vCPUs resumed on the destination. */
  split: { stopToCompletedMs: number, mirrorsMs: number, handOverMs: number }
  /** The machine's 1-minute load average when the sample was taken (the tunnel's Node processes compete for the same two cores). */
  load1m: number
}

/** One migration, as the agents will run it: prepare on `to`, migrate from `from`, resume on `to`, quit on `from`. */
async function migrate (from: Host, to: Host, spec: VmSpec, path: Path, session: string): Promise<Omit<Sample, 'workload' | 'round' | 'load1m'>> {
  const direct = path !== 'tunnel' && path !== 'unix'
  const tls = path.startsWith('tls') ? { pskHex: randomBytes(32).toString('hex') } : undefined
  const multifdChannels = (CHANNELS[path] ?? 1) > 1 ? CHANNELS[path] : undefined
  const listen = path === 'tunnel'
    ? { session, peer: from.hostId }
    : direct ? { tcp: { host: '127.0.0.1', port: await freePort(), nbdPort: await freePort(), ...(tls !== undefined ? { tls } : {}), ...(multifdChannels !== undefined ? { multifdChannels } : {}) } } : {}
  const incoming = await to.call<IncomingMigration>({ op: 'prepare', spec, ...listen })
  const via = path === 'tunnel'
    ? { tunnel: { peer: to.hostId, session } }
    : { direct: { migrationSocket: incoming.migrationSocket, ...(incoming.nbdSocket !== undefined ? { nbdSocket: incoming.nbdSocket } : {}) } }
  const params = { ...(path === 'tls300' ? QEMU_DEFAULTS : PARAMS), ...(tls !== undefined ? { tls } : {}), ...(multifdChannels !== undefined ? { multifdChannels } : {}) }
  let out: { result: MigrationResult, ramBytes?: number }
  try {
    out = await from.call({ op: 'migrate-out', id: spec.id, via, params })
  } catch (err) {
    await to.call({ op: 'destroy', id: spec.id }).catch(() => {})
    throw err
  }
  const { resumedAt } = await to.call<{ resumedAt: number }>({ op: 'complete-incoming', id: spec.id })
  await from.call({ op: 'complete-outgoing', id: spec.id })
  await from.call({ op: 'destroy', id: spec.id })
  const r = out.result
  return {
    path, memoryMiB: spec.memoryMiB, pauseMs: round1(resumedAt - r.stoppedAt), qemuDowntimeMs: r.downtimeMs, totalMs: r.totalMs, ramMs: r.ramMs, mirrorMs: r.mirrorMs, ramBytes: r.ramTransferredBytes,
    mbS: r.ramMs > 0 ? round1(r.ramTransferredBytes / r.ramMs / 1000) : 0,
    split: { stopToCompletedMs: round1(r.completedAt - r.stoppedAt), mirrorsMs: round1(r.mirrorsDoneAt - r.completedAt), handOverMs: round1(resumedAt - r.mirrorsDoneAt) }
  }
}

/** SIGKILL any QEMU still running under the bench's data dirs (a host process that died leaves its daemonized guests). */
function killLeftoverQemus (root: string): number[] {
  const killed: number[] = []
  for (const host of readdirSync(root)) {
    const vms = join(root, host, 'vms')
    let ids: string[] = []
    try { ids = readdirSync(vms) } catch { continue }
    for (const id of ids) {
      const pidFile = join(vms, id, 'qemu.pid')
      let pid = Number.NaN
      try { pid = Number.parseInt(readFileSync(pidFile, 'utf8'), 10) } catch { continue }
      let cmdline = ''
      try { cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8') } catch { continue }
      if (!cmdline.split('\0').includes(pidFile)) continue
      try { process.kill(pid, 'SIGKILL'); killed.push(pid) } catch { /* already gone */ }
    }
  }
  return killed
}

const median = (xs: number[]): number => percentile(xs, 50)
const round1 = (x: number): number => Math.round(x * 10) / 10
const round2 = (x: number): number => Math.round(x * 100) / 100
const caseKey = (memoryMiB: number, workload: string): string => `${memoryMiB}_disk${workload === 'idle' ? '' : '_dirty'}`

export const migration: Benchmark = {
  name: 'migration',
  description: 'live migration with disk between two host processes: direct QEMU TLS (default) vs plaintext TCP (with and without multifd) vs the mesh tunnel vs unix sockets',
  async run ({ quick, log }) {
    const g = await ensureGuest()
    const probe = await probeAccelerator({ kernel: g.kernel, initrd: g.initrd, cacheFile: join(REPO, '.cache', 'bench', 'accel-probe.json') })
    const accel: Accelerator = probe.accel
    log(`accelerator probe: ${accel}${probe.cached ? ' (cached)' : ''}: ${probe.reason}`)
    const loadBefore = loadavg()[0] as number
    const started = Date.now()
    const root = mkdtempSync(join(tmpdir(), 'mv-bm-'))
    const clusterKey = Buffer.from(generateClusterKey()).toString('base64')
    const samples: Sample[] = []
    const failures: Array<{ path: Path, memoryMiB: number, workload: string, round: number, from: string, error: string }> = []
    const cases: Case[] = []
    const main = PATHS.filter((p) => p !== 'tls300')
    for (const workload of ['idle', DIRTY.label]) {
      for (const memoryMiB of MEMORY_MIB) {
        const headline = memoryMiB === HEADLINE.memoryMiB && workload === HEADLINE.workload
        cases.push({ memoryMiB, workload, args: workload === 'idle' ? '' : DIRTY.args, rounds: quick ? (headline ? 3 : 1) : (headline ? 10 : 2), paths: headline ? PATHS : main })
      }
    }
    // Big guests for time and throughput: 75 % of RAM non-zero. Quick: the 2 GiB idle one only.
    for (const workload of ['idle', DIRTY.label]) {
      for (const memoryMiB of BIG_MIB) {
        if (quick && (memoryMiB !== THROUGHPUT.memoryMiB || workload !== THROUGHPUT.workload)) continue
        const fill = `meshvirt.fill_mib=${memoryMiB * 3 / 4}`
        // Not the tunnel: 1.5 GiB through it is minutes on a loaded 2-core machine (3.6 MB/s measured at load 30);
        // its ceiling is bench tunnel's (~210 MB/s quiet).
        cases.push({ memoryMiB, workload, args: workload === 'idle' ? fill : `${fill} ${DIRTY.args}`, rounds: 1, paths: main.filter((p) => p !== 'tunnel') })
      }
    }
    const hosts: Host[] = []
    try {
      const a = await startHost('a', { dataDir: join(root, 'a'), guestDir: g.dir, clusterKey, bootstrap: [], accel })
      hosts.push(a)
      const b = await startHost('b', { dataDir: join(root, 'b'), guestDir: g.dir, clusterKey, bootstrap: [a.addr], accel })
      hosts.push(b)
      let first = true
      for (const c of cases) {
        const spec: VmSpec = {
          id: `mig-${c.memoryMiB}-${c.workload.split(' ')[0] as string}`, vcpus: 1, memoryMiB: c.memoryMiB,
          boot: { kind: 'kernel', kernel: g.kernel, initrd: g.initrd, cmdline: `${g.cmdline} ${c.args}`.trim() },
          disks: [{ name: 'vda', sizeMiB: 64 }]
        }
        await a.call({ op: 'boot', spec })
        let here = a
        let there = b
        let n = 0
        // One unrecorded round first in the run: the hosts' first streams and code paths are cold (JIT, connections).
        for (let round = first ? -1 : 0; round < c.rounds; round++) {
          for (let j = 0; j < c.paths.length; j++) {
            const path = c.paths[(j + Math.max(round, 0)) % c.paths.length] as Path
            let s: Awaited<ReturnType<typeof migrate>>
            try {
              s = await migrate(here, there, spec, path, `${spec.id}-${n++}`)
            } catch (err) {
              // Recorded, not fatal: on a shared machine one QEMU lost mid-run must not void the others' samples.
              const error = (err as Error).message
              failures.push({ path, memoryMiB: c.memoryMiB, workload: c.workload, round, from: here.name, error })
              log(`${String(c.memoryMiB).padStart(3)} MiB ${c.workload.padEnd(16)} ${path} ${here.name}→${there.name} FAILED: ${error}; booting the guest again`)
              await Promise.allSettled([a.call({ op: 'destroy', id: spec.id }), b.call({ op: 'destroy', id: spec.id })])
              await a.call({ op: 'boot', spec })
              ;[here, there] = [a, b]
              continue
            }
            if (round >= 0) samples.push({ ...s, workload: c.workload, round, load1m: round1(loadavg()[0] as number) })
            log(`${String(c.memoryMiB).padStart(4)} MiB ${c.workload.padEnd(16)} ${round < 0 ? 'warm-up' : `round ${round + 1}/${c.rounds}`} ${path.padEnd(6)} ${here.name}→${there.name}: ` +
              `pause ${s.pauseMs.toFixed(1)} ms (QEMU downtime ${s.qemuDowntimeMs} ms; stop→completed ${s.split.stopToCompletedMs}, mirrors ${s.split.mirrorsMs}, hand-over ${s.split.handOverMs}), ` +
              `total ${s.totalMs} ms (mirror ${s.mirrorMs}, RAM ${s.ramMs}), ${(s.ramBytes / 1048576).toFixed(1)} MiB of RAM sent, ${s.mbS} MB/s`)
            ;[here, there] = [there, here]
          }
        }
        first = false
        await here.call({ op: 'destroy', id: spec.id })
      }
    } finally {
      await Promise.allSettled(hosts.map(async (h) => await h.call({ op: 'shutdown' })))
      const killed = killLeftoverQemus(root)
      if (killed.length > 0) log(`killed ${killed.length} QEMU process(es) left behind: ${killed.join(', ')}`)
      rmSync(root, { recursive: true, force: true })
    }

    const pick = (path: Path, memoryMiB: number, workload: string): Sample[] => samples.filter((s) => s.path === path && s.memoryMiB === memoryMiB && s.workload === workload)
    type PathSummary = { pauseMedianMs: number, pauseP90Ms: number, pauseMaxMs: number, qemuDowntimeMedianMs: number, totalMedianMs: number, mbSMedian: number }
    const summary = cases.map((c) => ({
      memoryMiB: c.memoryMiB,
      workload: c.workload,
      rounds: c.rounds,
      paths: Object.fromEntries(c.paths.flatMap((path) => {
        const xs = pick(path, c.memoryMiB, c.workload)
        if (xs.length === 0) return []
        const pauses = xs.map((s) => s.pauseMs)
        return [[path, {
          pauseMedianMs: round1(median(pauses)), pauseP90Ms: round1(percentile(pauses, 90)), pauseMaxMs: round1(Math.max(...pauses)),
          qemuDowntimeMedianMs: round1(median(xs.map((s) => s.qemuDowntimeMs))), totalMedianMs: round1(median(xs.map((s) => s.totalMs))),
          mbSMedian: round1(median(xs.map((s) => s.mbS)))
        }]]
      })) as Partial<Record<Path, PathSummary>>
    }))
    const find = (memoryMiB: number, workload: string): typeof summary[number] => {
      const found = summary.find((s) => s.memoryMiB === memoryMiB && s.workload === workload)
      if (found === undefined) throw new Error(`the ${memoryMiB} MiB ${workload} case did not run`)
      return found
    }
    const at = (c: typeof summary[number], path: Path): PathSummary => {
      const p = c.paths[path]
      if (p !== undefined) return p
      // Every attempt failed (they are in details.failures): NaN (null in the JSON) rather than losing the run.
      log(`no ${path} sample of the ${c.memoryMiB} MiB ${c.workload} case: its metrics are null`)
      return { pauseMedianMs: NaN, pauseP90Ms: NaN, pauseMaxMs: NaN, qemuDowntimeMedianMs: NaN, totalMedianMs: NaN, mbSMedian: NaN }
    }
    const head = find(HEADLINE.memoryMiB, HEADLINE.workload)
    const big = find(THROUGHPUT.memoryMiB, THROUGHPUT.workload)
    // Each round ran every path back to back on the same guest: their ratio, round by round.
    const paired = (path: Path, base: Path): number[] => {
      const t = pick(path, HEADLINE.memoryMiB, HEADLINE.workload)
      const d = pick(base, HEADLINE.memoryMiB, HEADLINE.workload)
      return t.flatMap((s) => { const o = d.find((x) => x.round === s.round); return o === undefined ? [] : [round2(s.pauseMs / o.pauseMs)] })
    }
    const ratio = (a: number, b: number): number => round2(a / b)

    const metrics: Record<string, Metric> = {
      downtime_ms_256_disk: { value: at(head, DEFAULT_PATH).pauseMedianMs, unit: 'ms', target: '< 50' },
      downtime_ratio_vs_direct: { value: ratio(at(head, DEFAULT_PATH).pauseMedianMs, at(head, 'tcp').pauseMedianMs), unit: 'ratio', target: '≤ 1.2' },
      throughput_ratio_vs_plain_2g: { value: ratio(at(big, DEFAULT_PATH).mbSMedian, at(big, 'tcp').mbSMedian), unit: 'ratio', target: '≥ 0.8' },
      total_s_2g: { value: round2(at(big, DEFAULT_PATH).totalMedianMs / 1000), unit: 's' },
      downtime_ratio_p90_vs_direct: { value: ratio(at(head, DEFAULT_PATH).pauseP90Ms, at(head, 'tcp').pauseP90Ms), unit: 'ratio' },
      // Where the gap to plaintext TCP comes from: TLS (same multifd channels, with and without it) and multifd (plaintext, with and without it).
      // TLS: the same channels with and without it; multifd: 2 channels against 1 stream, with TLS and without.
      downtime_ratio_tls_cost_1: { value: ratio(at(head, 'tls1').pauseMedianMs, at(head, 'tcp').pauseMedianMs), unit: 'ratio' },
      downtime_ratio_tls_cost_2: { value: ratio(at(head, 'tls2').pauseMedianMs, at(head, 'tcpmf').pauseMedianMs), unit: 'ratio' },
      downtime_ratio_multifd_plain: { value: ratio(at(head, 'tcpmf').pauseMedianMs, at(head, 'tcp').pauseMedianMs), unit: 'ratio' },
      downtime_ratio_multifd_tls: { value: ratio(at(head, 'tls2').pauseMedianMs, at(head, 'tls1').pauseMedianMs), unit: 'ratio' },
      throughput_ratio_tls_cost_1_2g: { value: ratio(at(big, 'tls1').mbSMedian, at(big, 'tcp').mbSMedian), unit: 'ratio' },
      throughput_ratio_tls_cost_2_2g: { value: ratio(at(big, 'tls2').mbSMedian, at(big, 'tcpmf').mbSMedian), unit: 'ratio' },
      throughput_ratio_multifd_plain_2g: { value: ratio(at(big, 'tcpmf').mbSMedian, at(big, 'tcp').mbSMedian), unit: 'ratio' },
      throughput_ratio_multifd_tls_2g: { value: ratio(at(big, 'tls2').mbSMedian, at(big, 'tls1').mbSMedian), unit: 'ratio' },
      downtime_ratio_tunnel_vs_direct: { value: ratio(at(head, 'tunnel').pauseMedianMs, at(head, 'tcp').pauseMedianMs), unit: 'ratio' },
      // The default path with QEMU's own parameters (300 ms limit, no auto-converge), same run: what the new defaults buy.
      downtime_ms_256_disk_qemu_defaults: { value: at(head, 'tls300').pauseMedianMs, unit: 'ms' },
      failed_migrations: { value: failures.length, unit: 'count' },
      qemu_downtime_ms_256_disk: { value: at(head, DEFAULT_PATH).qemuDowntimeMedianMs, unit: 'ms' },
      tcp_qemu_downtime_ms_256_disk: { value: at(head, 'tcp').qemuDowntimeMedianMs, unit: 'ms' }
    }
    for (const s of summary) {
      for (const [path, p] of Object.entries(s.paths) as Array<[Path, PathSummary]>) {
        const k = caseKey(s.memoryMiB, s.workload)
        metrics[`${PREFIX[path]}downtime_ms_${k}`] = { value: p.pauseMedianMs, unit: 'ms' }
        metrics[`${PREFIX[path]}downtime_p90_ms_${k}`] = { value: p.pauseP90Ms, unit: 'ms' }
        metrics[`${PREFIX[path]}total_ms_${k}`] = { value: p.totalMedianMs, unit: 'ms' }
        metrics[`${PREFIX[path]}mb_s_${k}`] = { value: p.mbSMedian, unit: 'MB/s' }
      }
    }

    log('')
    log(`pause median / p90 (max), total median, RAM MB/s — ${accel}, defaults: downtime limit ${DEFAULTS.downtimeLimitMs} ms, auto-converge ${String(DEFAULTS.autoConverge)}, ${MIGRATION_MULTIFD_CHANNELS} multifd channels; 64 MiB disk mirrored`)
    log(['case'.padEnd(30), ...PATHS.map((p) => p.padEnd(40))].join(''))
    for (const s of summary) {
      log([`${s.memoryMiB} MiB ${s.workload} ×${s.rounds}`.padEnd(30), ...PATHS.map((path) => {
        const p = s.paths[path]
        return (p === undefined ? '-' : `${p.pauseMedianMs.toFixed(1)} / ${p.pauseP90Ms.toFixed(1)} (${p.pauseMaxMs.toFixed(1)}) ms, ${p.totalMedianMs.toFixed(0)} ms, ${p.mbSMedian.toFixed(0)}`).padEnd(40)
      })].join(''))
    }
    const pt = paired(DEFAULT_PATH, 'tcp')
    log(`256 MiB idle + disk: default path ÷ plaintext TCP = ${metrics.downtime_ratio_vs_direct?.value ?? NaN} (medians), ${metrics.downtime_ratio_p90_vs_direct?.value ?? NaN} (p90s); ` +
      `round by round median ${median(pt)} [${Math.min(...pt)}..${Math.max(...pt)}]; TLS ×${metrics.downtime_ratio_tls_cost_1?.value ?? NaN} (1 stream) ×${metrics.downtime_ratio_tls_cost_2?.value ?? NaN} (2 channels), multifd ×${metrics.downtime_ratio_multifd_plain?.value ?? NaN} (plain) ×${metrics.downtime_ratio_multifd_tls?.value ?? NaN} (TLS)`)
    log(`2 GiB filled idle: default path ÷ plaintext TCP MB/s = ${metrics.throughput_ratio_vs_plain_2g?.value ?? NaN}; TLS ×${metrics.throughput_ratio_tls_cost_1_2g?.value ?? NaN} (1) ×${metrics.throughput_ratio_tls_cost_2_2g?.value ?? NaN} (2), multifd ×${metrics.throughput_ratio_multifd_plain_2g?.value ?? NaN} (plain) ×${metrics.throughput_ratio_multifd_tls_2g?.value ?? NaN} (TLS); total ${metrics.total_s_2g?.value ?? NaN} s`)
    log('')

    return {
      accel,
      metrics,
      details: {
        accelerator: { accel, reason: probe.reason, cached: probe.cached },
        params: { defaults: PARAMS, qemuDefaults: QEMU_DEFAULTS, multifdChannels: MIGRATION_MULTIFD_CHANNELS },
        pause: 'source QMP STOP → destination QMP RESUME (both QEMU event timestamps, one machine clock)',
        throughput: 'RAM bytes QEMU sent ÷ its RAM migration time (total-time), MB/s = 10^6 B/s',
        disk: '64 MiB qcow2, mirrored over NBD (blockdev-mirror sync=full)',
        paths: {
          tls1: 'QEMU → QEMU over loopback TCP with QEMU TLS (tls-creds-psk, one-time 256-bit key) on one migration stream and the NBD mirror',
          tls2: 'the same with 2 multifd channels (each its own TLS session)',
          default: `${DEFAULT_PATH} (the agents' default: MIGRATION_MULTIFD_CHANNELS = ${MIGRATION_MULTIFD_CHANNELS}); the unprefixed keys are its`,
          tcpmf: 'plaintext TCP with 2 multifd channels (no TLS)',
          tcp: 'QEMU → QEMU over loopback TCP: migrate tcp:127.0.0.1:PORT, one stream, NBD server on 127.0.0.1 (no Node, no encryption)',
          tunnel: 'two host processes, libp2p over loopback TCP: cluster-key pnet (AES-256-CTR) + noise + yamux, one stream per channel (RAM, NBD)',
          unix: 'QEMU → the destination QEMU\'s own unix sockets (no TCP, no Node)',
          tls300: `TLS with ${MIGRATION_MULTIFD_CHANNELS} channel(s) and QEMU's own parameters: 300 ms downtime limit, no auto-converge (headline case only)`
        },
        rounds: 'every path once per round, rotating order; one unrecorded warm-up round at the start of the run',
        workloads: {
          idle: 'the test guest counting',
          [DIRTY.label]: `kernel args ${DIRTY.args} (RAM rewritten ~20 MiB/s, 64 KiB written to disk per tick)`,
          big: '1 and 2 GiB guests: meshvirt.fill_mib = 75 % of RAM, non-zero data written once at boot'
        },
        headline: {
          case: '256 MiB idle + disk',
          ratioVsTcpMedians: metrics.downtime_ratio_vs_direct?.value,
          ratioVsTcpP90s: metrics.downtime_ratio_p90_vs_direct?.value,
          ratioVsTcpPerRound: pt,
          tunnelVsTcpPerRound: paired('tunnel', 'tcp'),
          ratioVsUnixPerRound: paired(DEFAULT_PATH, 'unix')
        },
        summary,
        failures,
        durationS: Math.round((Date.now() - started) / 1000),
        // Two cores shared with other work: the tunnel's two Node processes compete with both QEMUs.
        loadAverage1m: { before: round1(loadBefore), after: round1(loadavg()[0] as number) },
        samples
      }
    }
  }
}
