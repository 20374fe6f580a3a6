/**
 * replication: the recovery point the agent actually keeps for a real guest under steady disk writes.
 * Three `meshvirt agent` processes (real QEMU, TCG here; own data dirs; loopback; labels site=a/b/c;
 * the shipped timing and the shipped `--replica-bandwidth`, 32 MiB/s per holder). The agent does all
 * the replication (replication-manager: a point every half RPO, one sender per holder behind its
 * token bucket, holders placed by placement); the benchmark only drives the CLI and reads `vm show`.
 *  - The VM: 128 MiB, a 256 MiB disk, pinned to host-1; the test guest writes its counter plus
 *    256 KiB of random data per 200 ms tick (meshvirt.disk_kib=256). A fresh disk is zeros, which are
 *    not shipped: the VM is stopped once after its first boot, 192 MiB of its disk filled with
 *    qemu-io (64 MiB with --quick), and started again, so the first full copy has data to move.
 *  - Cases, one after the other on the same VM through `vm replicate` (--spread-by site): 1 replica at
 *    RPO 5 s, 2 replicas at RPO 5 s (a second holder: its own full copy), then (full run) 2 and 1
 *    replicas at RPO 2 s. After each change: wait until every holder is in sync, then one RPO to
 *    settle, then sample the owner's `vm show` every 250 ms for 60 s (20 s with --quick).
 *  - lag: each holder's lagMs (now − taken-at of the point it holds, the owner's clock): the data a
 *    failover at that instant would lose. A saw-tooth between one transfer and half an RPO + one
 *    transfer. rpo_p99_s (docs/benchmarks.md's key) = the worst p99 lag of the RPO 5 s cases.
 *  - first full copy: the full point's bytes (the owner's log) and the holder's bytes sent at its
 *    first in-sync; throughput = bytes / (vm replicate → holder in sync) and, separately, the ship
 *    alone (full point taken → in sync). Bounded by --replica-bandwidth (32 MiB/s).
 *  - guest pause: the QMP transaction of each point (the only drain of guest I/O), `lastPauseMs`
 *    read after every new point; p50/max over the incremental points of the windows; the full
 *    point's pause separately.
 * Every process started is stopped by pid (agents SIGTERM then SIGKILL; QEMUs and fence watchdogs
 * under the data dirs SIGKILL), also on failure. The building-block rig (take-point/ship loop in one
 * process) is gone: the figures now come from the agent itself; the last rig figures are in git
 * history (bench/results/replication.json at 80d29ab).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { REPO, percentile, type Benchmark, type Metric } from './harness.js'
import { ensureGuest } from '@meshvirt/testkit'
import { cli, freePort, inspect, killLeftovers, lastCounter, qemuPidsUnder, startAgent, stopAgent, until, watchdogPid, type Agent } from './failover-cluster.js'
import { caseFigures, sampleReplication, type CaseFigures, type Sampling } from './replication-sampler.js'

const MiB = 1024 * 1024
const DISK_MIB = 256
const WRITE_KIB_PER_TICK = 256
const SAMPLE_INTERVAL_MS = 250
const SITES = ['a', 'b', 'c'] as const
/** The agent's default `--replica-bandwidth` (not passed: the bench measures the shipped bound). */
const SHIPPED_BANDWIDTH_MIB_S = 32

interface Case { replicas: number, rpoS: number }
const FULL_CASES: Case[] = [{ replicas: 1, rpoS: 5 }, { replicas: 2, rpoS: 5 }, { replicas: 2, rpoS: 2 }, { replicas: 1, rpoS: 2 }]
const QUICK_CASES: Case[] = FULL_CASES.slice(0, 2)

interface FullCopy {
  holder: string
  /** Bytes the owner had sent this holder when it was first in sync. */
  sentMiB: number
  /** vm replicate issued → holder first in sync. */
  totalS: number
  /** Full point taken (owner log) → holder first in sync. */
  shipS?: number
  /** The full point's backup-job length (owner log): the disk's virtual size, zeros included (they are not shipped). */
  pointMiB?: number
  pointPauseMs?: number
  /** vm replicate issued → holder placed / full point taken (owner log). */
  placedS?: number
  pointTakenS?: number
  mibPerS: number
  shipMibPerS?: number
  /** Bytes the holders already in sync were sent meanwhile (a new holder's full point may reach them too). */
  othersSentMiB: number
}

interface CaseResult extends Case {
  key: string
  fullCopies: FullCopy[]
  /** vm replicate → every holder in sync; for the holders that were in sync before: their worst lag and the MiB sent meanwhile. */
  transition: { allInSyncS: number, pausesMs: number[], ownerMaxPauseMs: { before: number, after: number }, existingHoldersLagMaxS?: number, existingHoldersSentMiB?: number }
  settleS: number
  figures: CaseFigures
  guestWriteKibS: number
  /** The pause of each incremental point taken while sampling, ms. */
  pausesMs: number[]
  metrics: string[]
}

function cmdlineOf (pid: number): string {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '').slice(0, 4).join(' ').slice(0, 160) } catch { return 'gone' }
}

const round = (v: number | undefined, digits: number): number => v === undefined || !Number.isFinite(v) ? Number.NaN : Number(v.toFixed(digits))
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** The replication lines of an agent's /metrics (its monitor port, bearer token from its data dir). */
async function replicationMetrics (agent: Agent, port: number): Promise<string[]> {
  try {
    const token = readFileSync(join(agent.dataDir, 'monitor.token'), 'utf8').trim()
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(3000) })
    return (await res.text()).split('\n').filter((l) => /^meshvirt_(replica|replication)_/.test(l))
  } catch (err) {
    return [`scrape failed: ${(err as Error).message}`]
  }
}

export const replication: Benchmark = {
  name: 'replication',
  description: '3 agent processes, real guest writing its 256 MiB disk: replica lag (RPO achieved) with 1 and 2 replicas, first full copy, guest pause per point',
  run: async ({ quick, log }) => {
    const g = await ensureGuest()
    const cases = quick ? QUICK_CASES : FULL_CASES
    const sampleMs = (quick ? 20 : 60) * 1000
    const fillMiB = quick ? 64 : 192
    const root = mkdtempSync(join(tmpdir(), 'mv-bench-rep-'))
    const dirs = [1, 2, 3].map((i) => join(root, `host-${i}`))
    const agents: Agent[] = []
    const monitorPorts: number[] = []
    const results: CaseResult[] = []
    const loadBefore = loadavg()[0] as number
    const t00 = Date.now()
    let accel = 'unknown'
    let ok = false
    let vmId = ''
    let fillS = 0
    try {
      await cli(undefined, ['cluster', 'init', '--out', join(root, 'cluster.key')])
      for (let i = 0; i < 3; i++) {
        const port = await freePort()
        monitorPorts.push(await freePort())
        const argv = ['-k', join(root, 'cluster.key'), '--image-dir', g.dir, '--label', `site=${SITES[i]}`, '--monitor-listen', `127.0.0.1:${monitorPorts[i]}`,
          ...(i > 0 ? ['--bootstrap', (agents[0] as Agent).addr] : [])]
        agents.push(await startAgent(`host-${i + 1}`, dirs[i] as string, port, argv))
      }
      const [h1, , h3] = agents as [Agent, Agent, Agent]
      const nameOf = (hostId: string): string => agents.find((a) => a.hostId === hostId)?.name ?? hostId
      await until(async () => {
        const hosts = JSON.parse(await cli(h3, ['host', 'ls', '--json'], 20_000)) as Array<{ liveness: string, accelerator?: string }>
        if (hosts.length === 3 && hosts.every((h) => h.liveness === 'alive')) { accel = hosts[0]?.accelerator ?? 'unknown'; return true }
        return undefined
      }, { timeoutMs: 60_000, what: 'host-3 to see 3 hosts alive' })
      log(`3 agents up (pids ${agents.map((a) => a.pid).join(', ')}), accel ${accel}, in ${((Date.now() - t00) / 1000).toFixed(1)} s; load ${loadBefore.toFixed(2)}; data under ${root}`)

      // The VM, then its disk filled while it is stopped (a fresh disk is zeros: nothing to ship).
      const created = JSON.parse(await cli(h3, ['vm', 'create', '--name', 'rep', '--memory', '128M', '--disk', `${DISK_MIB}M`, '--host', 'host-1',
        '--kernel', g.kernel, '--initrd', g.initrd, '--cmdline', `${g.cmdline} meshvirt.disk_kib=${WRITE_KIB_PER_TICK}`, '--json'])) as { id: string, owner: string }
      vmId = created.id
      if (created.owner !== h1.hostId) throw new Error(`placed on ${nameOf(created.owner)}, not host-1`)
      const serial = join(h1.dataDir, 'vms', vmId, 'serial.log')
      await until(async () => await lastCounter(serial) >= 3 ? true : undefined, { timeoutMs: 120_000, intervalMs: 250, what: 'the guest counting' })
      await cli(h1, ['vm', 'stop', 'rep'])
      const tf = Date.now()
      execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x5a 1M ${fillMiB}M`, join(h1.dataDir, 'vms', vmId, 'vda.qcow2')], { stdio: 'ignore' })
      fillS = (Date.now() - tf) / 1000
      const before = await lastCounter(serial)
      await cli(h1, ['vm', 'start', 'rep'])
      await until(async () => await lastCounter(serial) > before + 2 ? true : undefined, { timeoutMs: 120_000, intervalMs: 250, what: 'the guest counting again after the fill' })
      log(`VM rep (${vmId}) on host-1: ${DISK_MIB} MiB disk, ${fillMiB} MiB filled in ${fillS.toFixed(1)} s, guest writing ${WRITE_KIB_PER_TICK} KiB per tick`)

      for (const c of cases) {
        const key = `${c.replicas === 1 ? '1_replica' : `${c.replicas}_replicas`}_rpo${c.rpoS}s`
        const prev = new Set((await inspect(h1, 'rep', 3000)).replication?.holders.map((h) => h.hostId) ?? [])
        const prevSent = new Map(((await inspect(h1, 'rep', 3000)).replication?.holders ?? []).map((h) => [h.hostId, h.sentBytes]))
        const tCmd = Date.now()
        await cli(h3, ['vm', 'replicate', 'rep', '--replicas', String(c.replicas), '--rpo', `${c.rpoS}s`, '--spread-by', 'site'])
        // Every holder in sync at this RPO; the new ones' first in-sync instant and bytes.
        const firstSync = new Map<string, { at: number, sent: number, othersSent: number }>()
        // What the change did to the holders already in sync: their worst lag and the bytes they were sent until all are in sync.
        let oldLagMaxMs = 0
        let oldSent = 0
        // Pauses of the points taken meanwhile (the full point among them), and the owner's running max before the change.
        const startView = await inspect(h1, 'rep', 3000)
        const maxPauseBefore = startView.replication?.maxPauseMs ?? 0
        let pointsSeen = startView.replication?.points ?? 0
        const transitionPauses: number[] = []
        await until(async () => {
          const v = await inspect(h1, 'rep', 3000)
          const r = v.replication
          if (r === undefined) return undefined
          if (r.points !== pointsSeen) { pointsSeen = r.points; transitionPauses.push(round(r.lastPauseMs, 1)) }
          for (const h of r.holders) if (prev.has(h.hostId) && h.lagMs !== null) oldLagMaxMs = Math.max(oldLagMaxMs, h.lagMs)
          oldSent = r.holders.filter((o) => prev.has(o.hostId)).reduce((n, o) => n + o.sentBytes - (prevSent.get(o.hostId) ?? 0), 0)
          for (const h of r.holders) {
            if (!prev.has(h.hostId) && h.state === 'in-sync' && !firstSync.has(h.hostId)) {
              const othersSent = r.holders.filter((o) => prev.has(o.hostId)).reduce((n, o) => n + o.sentBytes - (prevSent.get(o.hostId) ?? 0), 0)
              firstSync.set(h.hostId, { at: Date.now(), sent: h.sentBytes, othersSent })
            }
          }
          return r.rpoMs === c.rpoS * 1000 && r.holders.length === c.replicas && r.holders.every((h) => h.state === 'in-sync') ? true : undefined
        }, { timeoutMs: 240_000, intervalMs: 100, what: `${key}: every holder in sync` })
        const ownerLog = h1.logs().filter((l) => l.time >= tCmd - 5 && l.fields.vm === vmId)
        const fullPoint = ownerLog.find((l) => l.msg === 'full replica point taken')
        const fullCopies: FullCopy[] = [...firstSync].map(([holder, s]) => {
          const placed = ownerLog.find((l) => l.msg === 'replica holder placed' && l.fields.peer === holder)
          const pointBytes = Number(fullPoint?.fields.bytes)
          const shipS = fullPoint !== undefined ? (s.at - fullPoint.time) / 1000 : undefined
          return {
            holder: nameOf(holder),
            sentMiB: round(s.sent / MiB, 1),
            totalS: round((s.at - tCmd) / 1000, 2),
            ...(placed !== undefined ? { placedS: round((placed.time - tCmd) / 1000, 2) } : {}),
            ...(fullPoint !== undefined ? { pointTakenS: round((fullPoint.time - tCmd) / 1000, 2), pointMiB: round(pointBytes / MiB, 1), pointPauseMs: Number(fullPoint.fields.pauseMs) } : {}),
            ...(shipS !== undefined ? { shipS: round(shipS, 2), shipMibPerS: round(s.sent / MiB / shipS, 1) } : {}),
            mibPerS: round(s.sent / MiB / ((s.at - tCmd) / 1000), 1),
            othersSentMiB: round(s.othersSent / MiB, 1)
          }
        })
        const maxPauseAfter = (await inspect(h1, 'rep', 3000)).replication?.maxPauseMs ?? 0
        const transition = { allInSyncS: round((Date.now() - tCmd) / 1000, 2), pausesMs: transitionPauses, ownerMaxPauseMs: { before: round(maxPauseBefore, 1), after: round(maxPauseAfter, 1) }, ...(prev.size > 0 ? { existingHoldersLagMaxS: round(oldLagMaxMs / 1000, 2), existingHoldersSentMiB: round(oldSent / MiB, 1) } : {}) }
        if (prev.size > 0) log(`${key}: every holder in sync ${transition.allInSyncS} s after vm replicate; the holders already in sync lagged up to ${transition.existingHoldersLagMaxS} s meanwhile and were sent ${transition.existingHoldersSentMiB} MiB`)
        for (const f of fullCopies) log(`${key}: first full copy to ${f.holder}: ${f.sentMiB} MiB sent, in sync ${f.totalS} s after vm replicate (placed ${f.placedS ?? '?'} s, full point taken ${f.pointTakenS ?? '?'} s, pause ${f.pointPauseMs ?? '?'} ms) = ${f.mibPerS} MiB/s end to end, ${f.shipMibPerS ?? '?'} MiB/s shipping; holders already in sync were sent ${f.othersSentMiB} MiB meanwhile`)
        const tSync = Date.now()
        await sleep(c.rpoS * 1000)
        const qemu = qemuPidsUnder(h1.dataDir).find((q) => q.vmId === vmId)
        const processes: Record<string, number> = Object.fromEntries(agents.map((a) => [`${a.name} agent`, a.pid]))
        if (qemu !== undefined) processes['guest QEMU'] = qemu.pid
        const c0 = await lastCounter(serial)
        const sampling: Sampling = await sampleReplication(h1, 'rep', { durationMs: sampleMs, intervalMs: SAMPLE_INTERVAL_MS, processes })
        const ticks = await lastCounter(serial) - c0
        const figures = caseFigures(sampling, nameOf)
        const guestWriteKibS = round(ticks * WRITE_KIB_PER_TICK / (sampling.durationMs / 1000), 0)
        const metricsLines = await replicationMetrics(h1, monitorPorts[0] as number)
        results.push({ ...c, key, fullCopies, transition, settleS: round((Date.now() - tSync) / 1000 - sampling.durationMs / 1000, 1), figures, guestWriteKibS, pausesMs: sampling.pauses.map((p) => round(p.pauseMs, 1)), metrics: metricsLines })
        const maxPauseEnd = sampling.last.replication?.maxPauseMs ?? 0
        if (maxPauseEnd > maxPauseAfter) log(`${key}: the owner's max pause grew to ${maxPauseEnd.toFixed(1)} ms while sampling`)
        log(`${key}: pauses while it changed: ${transitionPauses.join(', ')} ms (owner max ${maxPauseBefore.toFixed(1)} → ${maxPauseAfter.toFixed(1)} ms)`)
        log(`${key}: lag p50 ${figures.lag_p50_s} s, p99 ${figures.lag_p99_s} s, max ${figures.lag_max_s} s (${figures.samples} samples, ${figures.not_in_sync_samples} not in sync, ${figures.missed_polls} polls missed); ${figures.points} points every ${figures.point_interval_s} s, ~${figures.point_kib_mean} KiB each; pause p50 ${figures.pause_ms_p50} ms, max ${figures.pause_ms_max} ms; guest wrote ${guestWriteKibS} KiB/s; load ${figures.load_1m.min}–${figures.load_1m.max}; CPU s/s ${JSON.stringify(figures.cpu_s_per_s)}`)
      }
      const final = await inspect(h1, 'rep', 3000)
      log(`owner totals: ${final.replication?.points} points, max pause ${final.replication?.maxPauseMs.toFixed(1)} ms (full points included)`)
      try {
        await cli(h3, ['vm', 'delete', 'rep'], 60_000)
      } catch (err) { log(`vm delete failed: ${(err as Error).message}`) }
      ok = true
    } finally {
      for (const a of agents) await stopAgent(a).catch(() => {})
      // A fence watchdog exits by itself within a tick (50 ms) once its agent is gone and nothing is armed.
      await until(async () => dirs.every((d) => watchdogPid(d) === undefined) ? true : undefined, { timeoutMs: 2000, intervalMs: 100, what: 'fence watchdogs to exit' }).catch(() => {})
      for (const d of dirs) {
        const cmdlines = new Map([...qemuPidsUnder(d).map((q) => q.pid), ...[watchdogPid(d)].filter((p): p is number => p !== undefined)].map((pid) => [pid, cmdlineOf(pid)]))
        const killed = killLeftovers(d)
        if (killed.length > 0) log(`killed leftovers under ${d}: ${killed.map((pid) => `${pid} (${cmdlines.get(pid) ?? '?'})`).join(', ')}`)
      }
      if (ok) rmSync(root, { recursive: true, force: true })
      else log(`data kept for inspection: ${root}`)
    }

    const at5 = results.filter((r) => r.rpoS === 5)
    const at2 = results.filter((r) => r.rpoS === 2)
    const byKey = (replicas: number, rpoS: number): CaseResult | undefined => results.find((r) => r.replicas === replicas && r.rpoS === rpoS)
    const worst = (rs: CaseResult[], f: (x: CaseFigures) => number): number => Math.max(...rs.map((r) => f(r.figures)))
    const first = results[0]?.fullCopies[0]
    const second = results.find((r) => r.replicas === 2)?.fullCopies[0]
    const pauses = results.flatMap((r) => r.pausesMs)
    const metrics: Record<string, Metric> = {
      rpo_p99_s: { value: worst(at5, (f) => f.lag_p99_s), unit: 's', target: '≤ 5' },
      rpo_p50_s: { value: worst(at5, (f) => f.lag_p50_s), unit: 's' },
      rpo_max_s: { value: worst(at5, (f) => f.lag_max_s), unit: 's' }
    }
    for (const r of results) {
      const k = r.key
      metrics[`lag_p50_s_${k}`] = { value: r.figures.lag_p50_s, unit: 's' }
      metrics[`lag_p99_s_${k}`] = { value: r.figures.lag_p99_s, unit: 's', target: `≤ ${r.rpoS} (its RPO)` }
    }
    if (at2.length > 0) metrics.rpo_p99_s_rpo2s = { value: worst(at2, (f) => f.lag_p99_s), unit: 's', target: '≤ 2 (its RPO)' }
    Object.assign(metrics, {
      full_copy_mib: { value: first?.sentMiB ?? Number.NaN, unit: 'MiB' },
      full_copy_s: { value: first?.totalS ?? Number.NaN, unit: 's' },
      full_copy_mib_s: { value: first?.mibPerS ?? Number.NaN, unit: 'MiB/s', target: `bound ${SHIPPED_BANDWIDTH_MIB_S} (--replica-bandwidth)` },
      full_copy_ship_mib_s: { value: first?.shipMibPerS ?? Number.NaN, unit: 'MiB/s' },
      full_copy_second_holder_mib_s: { value: second?.mibPerS ?? Number.NaN, unit: 'MiB/s' },
      adding_holder_all_in_sync_s: { value: byKey(2, 5)?.transition.allInSyncS ?? Number.NaN, unit: 's' },
      adding_holder_existing_lag_max_s: { value: byKey(2, 5)?.transition.existingHoldersLagMaxS ?? Number.NaN, unit: 's', target: '≤ 5 (RPO)' },
      adding_holder_existing_sent_mib: { value: byKey(2, 5)?.transition.existingHoldersSentMiB ?? Number.NaN, unit: 'MiB' },
      pause_ms_p50: { value: round(percentile(pauses, 50), 1), unit: 'ms' },
      pause_ms_max: { value: Math.max(...results.map((r) => r.figures.pause_ms_max)), unit: 'ms' },
      pause_ms_max_all_points: { value: Math.max(...results.map((r) => Math.max(r.figures.pause_ms_max, ...r.transition.pausesMs))), unit: 'ms' },
      full_point_pause_ms: { value: first?.pointPauseMs ?? Number.NaN, unit: 'ms' },
      point_kib_mean_rpo5s: { value: byKey(1, 5)?.figures.point_kib_mean ?? Number.NaN, unit: 'KiB' },
      guest_write_kib_s: { value: round(percentile(results.map((r) => r.guestWriteKibS), 50), 0), unit: 'KiB/s' },
      load_1m_max: { value: Math.max(...results.map((r) => r.figures.load_1m.max)), unit: '' }
    })
    return {
      accel,
      metrics,
      details: {
        method: `three meshvirt agent processes on loopback (separate data dirs, labels site=a/b/c, shipped timing and --replica-bandwidth ${SHIPPED_BANDWIDTH_MIB_S}M); one VM pinned to host-1, 128 MiB, ${DISK_MIB} MiB disk (${fillMiB} MiB filled with qemu-io while stopped), the test guest writing its counter + ${WRITE_KIB_PER_TICK} KiB of random data per 200 ms tick; cases through vm replicate --spread-by site on the same VM; after every holder is in sync and one RPO, the owner's vm show (inspectVm on its control socket) every ${SAMPLE_INTERVAL_MS} ms for ${sampleMs / 1000} s`,
        lag: 'each holder\'s lagMs as the owner reports it: now − taken-at of the point the holder holds (null before its first point); p50/p99 over all holders\' samples of a case',
        rpo_p99_s: 'the worst p99 lag of the RPO 5 s cases (1 and 2 replicas)',
        full_copy: 'bytes the owner had sent the holder at its first in-sync / (vm replicate → that instant); ship = from the full point\'s log line (taken) instead',
        pause: 'lastPauseMs read after each new point (the QMP transaction: the guest\'s I/O drained); p50 over every sampled point of every case',
        rig: 'the building-block rig (its own take-point/ship loop in one process) was removed; its last figures are in git history (bench/results/replication.json at 80d29ab)',
        load_average_1m: { before: round(loadBefore, 2), after: round(loadavg()[0] as number, 2) },
        fill_s: round(fillS, 1),
        wall_s: round((Date.now() - t00) / 1000, 1),
        source: gitState(),
        cases: results
      }
    }
  }
}

/** The commit measured and the agent sources that differed from it (the tree is shared: dist/ is built from it). */
function gitState (): { commit: string, uncommitted_under_packages: string[] } {
  const git = (args: string[]): string => { try { return execFileSync('git', ['-C', REPO, ...args], { encoding: 'utf8' }).trim() } catch { return '' } }
  return { commit: git(['rev-parse', 'HEAD']), uncommitted_under_packages: git(['status', '--porcelain', '--', 'packages']).split('\n').filter((l) => l !== '').map((l) => l.slice(3)) }
}
