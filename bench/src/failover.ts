/**
 * failover: host death → the guest ready on another host, with nobody asking (the lease's automatic
 * failover), and the data the guest lost. Three `meshvirt agent` processes (real QEMU, TCG here; own
 * data dirs; loopback; labels site=a/b/c; the shipped timing — MESHVIRT_TIMING unset, lease defaults:
 * lease 3 s, renew 0.5 s, election margin 0.5 s, jitter 0.5 s). Per run, on a fresh VM:
 *  - `vm create --replicas 1 --rpo 2s --spread-by site --host host-1` with a disk, the test guest counting
 *    (its counter on the first bytes of /dev/vda every 200 ms tick, + 64 KiB of disk per tick);
 *  - wait until the holder is in sync and host-1 holds the lease, then a random 0–1 s (one point cycle:
 *    the kill lands at any phase of the RPO loop);
 *  - host death: SIGKILL of host-1's agent, its QEMU and its fence watchdog in one synchronous step;
 *  - failover_*_s: kill → MESHVIRT-READY in the serial log of the VM on the holder (the guest booted
 *    there); running_*_s: kill → the holder's `vm show` (inspectVm on its control socket, polled every
 *    100 ms) says running, owner = holder, epoch 2. The split comes from the holder's log: candidate,
 *    elected, promoted (first renewal at the new epoch has a majority), replica → VM (disk import),
 *    QEMU running, guest ready.
 *  - data lost: the last counter the guest printed on host-1 − the counter it found on its disk at boot
 *    on the holder (MESHVIRT-DISK n), in ticks × 200 ms; and the replica's age at the kill (kill − the
 *    promoted point's taken-at, from the holder's log), to compare with the RPO.
 * Between runs host-1's agent restarts on the same port (its data dir, with the dead VM's files, kept):
 * what it does with its stale copy is recorded (relinquished/demoted, any QEMU started), then the VM is
 * deleted and the cluster checked for leftovers. Every process started is stopped by pid, also on failure.
 */
import { mkdtempSync, rmSync, existsSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { REPO, percentile, type Benchmark, type Metric } from './harness.js'
import { ensureGuest } from '@meshvirt/testkit'
import {
  cli, cpuSeconds, freePort, inspect, isAlive, killHost, killLeftovers, lastCounter, qemuPidsUnder, readText, startAgent, stopAgent, until,
  type Agent, type LogLine
} from './failover-cluster.js'

const RPO_S = 2
const TICK_MS = 200
const SITES = ['a', 'b', 'c'] as const
/** Ticks the guest has written on host-1 before the kill may come (~5 s of writes at the nominal tick). */
const MIN_COUNTER = 25

interface Run {
  run: number
  vm: string
  id: string
  holder: string
  failedOver: boolean
  error?: string
  /** Seconds from the kill. */
  readyS?: number
  runningS?: number
  candidateS?: number
  electedS?: number
  promotedS?: number
  replicaToVmS?: number
  qemuRunningS?: number
  serialFirstS?: number
  bootS?: number
  epoch?: number
  lastPrinted?: number
  diskCounter?: number
  lostTicks?: number
  lostS?: number
  /** Kill − taken-at of the point the holder started from. */
  replicaAgeS?: number
  /** The guest's real tick on host-1 (TCG: the loop's own work adds to the 200 ms sleep). */
  tickMsMeasured?: number
  killDelayMs: number
  /** The machine's 1-minute load average at the kill (2 cores; other work on the machine shows here). */
  load1mAtKill?: number
  /** Ticks lost × the measured tick. */
  lostSMeasuredTick?: number
  /** CPU seconds the new QEMU used from its start to READY: the boot's own cost, without waiting for a core. */
  bootCpuS?: number
  holderLagBeforeKillMs?: number | null
  /** CPU seconds each surviving agent (and the new QEMU) used from the kill to READY: 2 cores = 2 s per s. */
  cpuDuringFailoverS?: Record<string, number | undefined>
  /** The holder's log about the VM (and its warnings) from the kill to READY. */
  holderLog?: Array<{ atS: number, msg: string }>
  leaseHistory?: Array<{ type: string, atS: number, epoch: number, host: string, detail: string }>
  /** What host-1 did when it came back. */
  comeback: { restartS: number, events: Array<{ atS: number, msg: string, detail?: string }>, qemuStarted: boolean, twoCopiesSeen: boolean, sawAliveS?: number }
  deleteS?: number
  leftovers: string[]
}

const round = (v: number | undefined, digits: number): number | undefined => v === undefined || Number.isNaN(v) ? undefined : Number(v.toFixed(digits))
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** The first log line of `agent` about `vmId` with message `msg` (prefix) at or after `from`. */
function logAt (agent: Agent | undefined, vmId: string, msg: string, from: number): LogLine | undefined {
  return agent?.logs().find((l) => l.time >= from - 5 && l.msg.startsWith(msg) && l.fields.vm === vmId)
}

async function allAlive (on: Agent, n: number): Promise<true | undefined> {
  const hosts = JSON.parse(await cli(on, ['host', 'ls', '--json'], 20_000)) as Array<{ liveness: string }>
  return hosts.length === n && hosts.every((h) => h.liveness === 'alive') ? true : undefined
}

export const failover: Benchmark = {
  name: 'failover',
  description: 'host death (agent + QEMU SIGKILL) → the replicated guest ready on its holder, automatic; data lost vs the RPO',
  run: async ({ quick, log }) => {
    const g = await ensureGuest()
    const runs = quick ? 3 : 10
    const root = mkdtempSync(join(tmpdir(), 'mv-bench-failover-'))
    const agents: Agent[] = []
    const dirs = [1, 2, 3].map((i) => join(root, `host-${i}`))
    const results: Run[] = []
    const loadBefore = loadavg()[0] as number
    const t00 = Date.now()
    let ok = false
    let accel = 'unknown'
    try {
      await cli(undefined, ['cluster', 'init', '--out', join(root, 'cluster.key')])
      const ports = [await freePort(), await freePort(), await freePort()]
      const base = (i: number): string[] => ['-k', join(root, 'cluster.key'), '--image-dir', g.dir, '--label', `site=${SITES[i]}`]
      agents.push(await startAgent('host-1', dirs[0] as string, ports[0] as number, base(0)))
      for (const i of [1, 2]) agents.push(await startAgent(`host-${i + 1}`, dirs[i] as string, ports[i] as number, [...base(i), '--bootstrap', (agents[0] as Agent).addr]))
      const h3 = (): Agent => agents[2] as Agent
      await until(async () => await allAlive(h3(), 3), { timeoutMs: 60_000, what: 'host-3 to see 3 hosts alive' })
      const hostsJson = JSON.parse(await cli(h3(), ['host', 'ls', '--json'])) as Array<{ accelerator?: string }>
      accel = hostsJson[0]?.accelerator ?? 'unknown'
      log(`3 agents up (pids ${agents.map((a) => a.pid).join(', ')}), accel ${accel}, in ${((Date.now() - t00) / 1000).toFixed(1)} s; data under ${root}`)

      for (let r = 1; r <= runs; r++) {
        const name = `fo-${r}`
        const created = JSON.parse(await cli(h3(), ['vm', 'create', '--name', name, '--memory', '128M', '--disk', '32M', '--host', 'host-1',
          '--replicas', '1', '--rpo', `${RPO_S}s`, '--spread-by', 'site',
          '--kernel', g.kernel, '--initrd', g.initrd, '--cmdline', `${g.cmdline} meshvirt.disk_kib=64`, '--json'])) as { id: string, owner: string }
        const h1 = agents[0] as Agent
        const run: Run = { run: r, vm: name, id: created.id, holder: '', failedOver: false, killDelayMs: 0, comeback: { restartS: 0, events: [], qemuStarted: false, twoCopiesSeen: false }, leftovers: [] }
        results.push(run)
        try {
          if (created.owner !== h1.hostId) throw new Error(`placed on ${created.owner}, not host-1`)
          const serial1 = join(h1.dataDir, 'vms', created.id, 'serial.log')
          // Steady state first: the guest has written for a while (so the data lost is not bounded by how little it wrote).
          await until(async () => await lastCounter(serial1) >= MIN_COUNTER ? true : undefined, { timeoutMs: 120_000, intervalMs: 200, what: `${name} counting to ${MIN_COUNTER} on host-1` })
          const synced = await until(async () => {
            const v = await inspect(h1, name, 3000)
            const holder = v.replication?.holders[0]
            return holder?.state === 'in-sync' && v.lease?.role === 'owner' && v.lease.running && v.lease.members.length >= 2 ? v : undefined
          }, { timeoutMs: 90_000, intervalMs: 250, what: `${name}: replica in sync and the lease held` })
          run.holder = synced.replication?.holders[0]?.hostId as string
          const holder = agents.find((a) => a.hostId === run.holder)
          if (holder === undefined) throw new Error(`holder ${run.holder} is not one of ours`)
          const c0 = await lastCounter(serial1)
          const tc0 = Date.now()
          run.killDelayMs = Math.round(Math.random() * 1000)
          await sleep(run.killDelayMs)
          run.holderLagBeforeKillMs = (await inspect(h1, name, 2000).catch(() => undefined))?.replication?.holders[0]?.lagMs ?? null

          run.load1mAtKill = round(loadavg()[0] as number, 2)
          const survivors = agents.filter((a) => a !== h1)
          const cpu0 = survivors.map((a) => cpuSeconds(a.pid) ?? 0)
          // Host death.
          const killed = killHost(h1)
          const t0 = killed.at
          await h1.exited
          const lastPrinted = await lastCounter(serial1)
          run.lastPrinted = lastPrinted
          if (lastPrinted > c0) run.tickMsMeasured = Math.round((t0 - tc0) / (lastPrinted - c0))
          const serial2 = join(holder.dataDir, 'vms', created.id, 'serial.log')
          const deadline = t0 + 90_000
          let readyAt: number | undefined
          let serialFirstAt: number | undefined
          let runningAt: number | undefined
          let runningView: Awaited<ReturnType<typeof inspect>> | undefined
          const watchSerial = (async () => {
            while (Date.now() < deadline && readyAt === undefined) {
              if (serialFirstAt === undefined && existsSync(serial2)) serialFirstAt = Date.now()
              if (serialFirstAt !== undefined && (await readText(serial2)).includes('MESHVIRT-READY')) readyAt = Date.now()
              else await sleep(20)
            }
          })()
          const watchShow = (async () => {
            while (Date.now() < deadline && runningAt === undefined) {
              const v = await inspect(holder, name, 1000).catch(() => undefined)
              if (v !== undefined && v.state === 'running' && v.owner === holder.hostId && v.epoch >= 2) { runningAt = Date.now(); runningView = v } else await sleep(100)
            }
          })()
          await Promise.all([watchSerial, watchShow])
          if (readyAt === undefined || runningAt === undefined) throw new Error(`no failover within 90 s (ready ${readyAt !== undefined}, running ${runningAt !== undefined})`)
          run.failedOver = true
          const newQemu = qemuPidsUnder(holder.dataDir).find((q) => q.vmId === created.id)
          run.cpuDuringFailoverS = Object.fromEntries([
            ...survivors.map((a, i) => [`${a.name}${a === holder ? ' (holder)' : ''} agent`, round((cpuSeconds(a.pid) ?? 0) - (cpu0[i] ?? 0), 2)]),
            ['new QEMU', round(newQemu !== undefined ? cpuSeconds(newQemu.pid) ?? 0 : 0, 2)]
          ])
          run.bootCpuS = round(newQemu !== undefined ? cpuSeconds(newQemu.pid) : undefined, 2)
          run.epoch = runningView?.epoch
          run.readyS = (readyAt - t0) / 1000
          run.runningS = (runningAt - t0) / 1000
          run.serialFirstS = serialFirstAt !== undefined ? (serialFirstAt - t0) / 1000 : undefined
          const text = await readText(serial2)
          const disk = /MESHVIRT-DISK (\d+|none)/.exec(text)
          if (disk?.[1] !== undefined) {
            run.diskCounter = disk[1] === 'none' ? 0 : Number(disk[1])
            run.lostTicks = lastPrinted - run.diskCounter
            run.lostS = run.lostTicks * TICK_MS / 1000
            if (run.tickMsMeasured !== undefined) run.lostSMeasuredTick = run.lostTicks * run.tickMsMeasured / 1000
          }
          const at = (l: LogLine | undefined): number | undefined => l === undefined ? undefined : (l.time - t0) / 1000
          run.candidateS = at(logAt(holder, created.id, 'lease: candidate', t0))
          run.electedS = at(logAt(holder, created.id, 'lease: elected', t0))
          run.promotedS = at(logAt(holder, created.id, 'lease: promoted', t0))
          const promotedLine = logAt(holder, created.id, 'replica promoted', t0)
          run.replicaToVmS = at(promotedLine)
          run.qemuRunningS = at(logAt(holder, created.id, 'vm running', t0))
          if (run.qemuRunningS !== undefined) run.bootS = run.readyS - run.qemuRunningS
          const takenAt = Number(promotedLine?.fields.pointTakenAt)
          if (Number.isFinite(takenAt) && takenAt > 0) run.replicaAgeS = (t0 - takenAt) / 1000
          run.holderLog = holder.logs().filter((l) => l.time >= t0 - 5 && l.time <= (readyAt ?? t0) + 5 && (l.fields.vm === created.id || l.level !== 'info'))
            .map((l) => ({ atS: Number(((l.time - t0) / 1000).toFixed(3)), msg: l.msg }))
          run.leaseHistory = (runningView?.leaseHistory ?? []).map((h) => ({ type: h.type, atS: Number(((h.atMs - t0) / 1000).toFixed(3)), epoch: h.epoch, host: agents.find((a) => a.hostId === h.hostId)?.name ?? h.hostId, detail: h.detail }))
          log(`run ${r}/${runs} ${name}: ready ${run.readyS.toFixed(2)} s, running ${run.runningS.toFixed(2)} s (candidate ${run.candidateS?.toFixed(2)}, elected ${run.electedS?.toFixed(2)}, promoted ${run.promotedS?.toFixed(2)}, QEMU running ${run.qemuRunningS?.toFixed(2)}, boot ${run.bootS?.toFixed(2)}) on ${holder.name}; lost ${run.lostTicks} ticks (printed ${lastPrinted}, disk ${run.diskCounter}), replica age at kill ${run.replicaAgeS?.toFixed(2)} s`)
        } catch (err) {
          run.error = (err as Error).message
          log(`run ${r}/${runs} ${name}: FAILED: ${run.error}`)
        }

        // host-1 comes back on the same port (bootstrapping through host-2); what does it do with its stale copy?
        const old = agents[0] as Agent
        if (isAlive(old)) { killHost(old); await old.exited }
        const tr = Date.now()
        const back = await startAgent('host-1', old.dataDir, old.port, [...old.argv.filter((a, i, all) => a !== '--bootstrap' && all[i - 1] !== '--bootstrap'), '--bootstrap', (agents[1] as Agent).addr])
        agents[0] = back
        run.comeback.restartS = (Date.now() - tr) / 1000
        const holderAgent = agents.find((a) => a.hostId === run.holder)
        const cbDeadline = Date.now() + 20_000
        let settled = false
        while (Date.now() < cbDeadline && !settled) {
          const mine = qemuPidsUnder(back.dataDir).filter((q) => q.vmId === run.id)
          if (mine.length > 0) {
            run.comeback.qemuStarted = true
            if (holderAgent !== undefined && qemuPidsUnder(holderAgent.dataDir).some((q) => q.vmId === run.id)) run.comeback.twoCopiesSeen = true
          }
          settled = back.logs().some((l) => l.fields.vm === run.id && /relinquished|lease: demoted/.test(l.msg))
          if (!settled) await sleep(100)
        }
        run.comeback.events = back.logs().filter((l) => l.fields.vm === run.id).map((l) => ({ atS: Number(((l.time - tr) / 1000).toFixed(3)), msg: l.msg, ...(typeof l.fields.detail === 'string' ? { detail: l.fields.detail } : {}) }))
        await until(async () => await allAlive(h3(), 3), { timeoutMs: 60_000, intervalMs: 500, what: 'host-1 seen alive again' })
        await until(async () => await allAlive(back, 3), { timeoutMs: 60_000, intervalMs: 500, what: 'host-1 to see the cluster' })
        run.comeback.sawAliveS = (Date.now() - tr) / 1000
        log(`  host-1 back after ${run.comeback.restartS.toFixed(1)} s (alive everywhere at ${run.comeback.sawAliveS.toFixed(1)} s): ${run.comeback.events.map((e) => `${e.atS.toFixed(1)} s ${e.msg}`).join('; ') || 'no event about the VM'}${run.comeback.qemuStarted ? '; ITS QEMU STARTED' : ''}`)

        const td = Date.now()
        try {
          await cli(h3(), ['vm', 'delete', name])
          await until(async () => {
            for (const a of agents) {
              const gone = await inspect(a, name, 3000).then(() => false, (e: Error & { code?: string }) => e.code === 'NOT_FOUND')
              if (!gone) return undefined
            }
            return agents.every((a) => !qemuPidsUnder(a.dataDir).some((q) => q.vmId === run.id)) ? true : undefined
          }, { timeoutMs: 60_000, intervalMs: 300, what: `${name} deleted everywhere` })
          run.deleteS = (Date.now() - td) / 1000
          await until(async () => agents.every((a) => !existsSync(join(a.dataDir, 'replicas', run.id)) && !existsSync(join(a.dataDir, 'vms', run.id))) ? true : undefined, { timeoutMs: 20_000, intervalMs: 300, what: 'replica and VM dirs removed' }).catch(() => {})
        } catch (err) {
          run.leftovers.push(`delete: ${(err as Error).message}`)
        }
        for (const a of agents) {
          if (existsSync(join(a.dataDir, 'replicas', run.id))) run.leftovers.push(`${a.name}: replicas/${run.id}`)
          if (existsSync(join(a.dataDir, 'vms', run.id))) run.leftovers.push(`${a.name}: vms/${run.id}`)
          for (const q of qemuPidsUnder(a.dataDir)) { run.leftovers.push(`${a.name}: QEMU ${q.pid} of ${q.vmId} still running (killed)`); try { process.kill(q.pid, 'SIGKILL') } catch { /* gone */ } }
        }
        if (run.leftovers.length > 0) log(`  leftovers: ${run.leftovers.join('; ')}`)
      }
      ok = true
    } finally {
      for (const a of agents) await stopAgent(a).catch(() => {})
      for (const d of dirs) killLeftovers(d)
      if (ok) rmSync(root, { recursive: true, force: true })
      else log(`data kept for inspection: ${root}`)
    }

    const done = results.filter((r) => r.failedOver)
    const vals = (f: (r: Run) => number | undefined): number[] => done.map(f).filter((v): v is number => v !== undefined && Number.isFinite(v))
    const p = (f: (r: Run) => number | undefined, q: number, digits = 2): number => round(percentile(vals(f), q), digits) ?? Number.NaN
    const max = (f: (r: Run) => number | undefined, digits = 2): number => round(Math.max(...vals(f)), digits) ?? Number.NaN
    const metrics: Record<string, Metric> = {
      failover_p50_s: { value: p((r) => r.readyS, 50), unit: 's', target: '< 10' },
      failover_p99_s: { value: p((r) => r.readyS, 99), unit: 's' },
      failover_max_s: { value: max((r) => r.readyS), unit: 's' },
      running_p50_s: { value: p((r) => r.runningS, 50), unit: 's' },
      running_p99_s: { value: p((r) => r.runningS, 99), unit: 's' },
      elected_p50_s: { value: p((r) => r.electedS, 50), unit: 's' },
      promoted_p50_s: { value: p((r) => r.promotedS, 50), unit: 's' },
      qemu_running_p50_s: { value: p((r) => r.qemuRunningS, 50), unit: 's' },
      boot_p50_s: { value: p((r) => r.bootS, 50), unit: 's' },
      boot_cpu_p50_s: { value: p((r) => r.bootCpuS, 50), unit: 'CPU s' },
      load_1m_at_kill_p50: { value: p((r) => r.load1mAtKill, 50), unit: '' },
      data_lost_p50_s: { value: p((r) => r.lostS, 50), unit: 's' },
      data_lost_max_s: { value: max((r) => r.lostS), unit: 's', target: `≤ ${RPO_S} (RPO)` },
      data_lost_max_s_measured_tick: { value: max((r) => r.lostSMeasuredTick), unit: 's' },
      data_lost_ticks_p50: { value: p((r) => r.lostTicks, 50, 0), unit: 'ticks' },
      data_lost_ticks_max: { value: max((r) => r.lostTicks, 0), unit: 'ticks' },
      replica_age_at_kill_p50_s: { value: p((r) => r.replicaAgeS, 50), unit: 's' },
      replica_age_at_kill_max_s: { value: max((r) => r.replicaAgeS), unit: 's' },
      rpo_s: { value: RPO_S, unit: 's' },
      runs: { value: results.length, unit: 'runs' },
      failed_over: { value: done.length, unit: 'runs', target: `${results.length}` },
      old_owner_restarted_a_guest: { value: results.filter((r) => r.comeback.qemuStarted).length, unit: 'runs', target: '0' }
    }
    const table = ['run  ready_s  running_s  candidate  elected  promoted  qemu_up  boot_s  boot_cpu_s  load1m  lost_ticks  lost_s  replica_age_s  holder',
      ...results.map((r) => [String(r.run).padEnd(4), fmt(r.readyS, 7), fmt(r.runningS, 9), fmt(r.candidateS, 9), fmt(r.electedS, 7), fmt(r.promotedS, 8), fmt(r.qemuRunningS, 7), fmt(r.bootS, 6), fmt(r.bootCpuS, 10), fmt(r.load1mAtKill, 6),
        String(r.lostTicks ?? '-').padStart(10), fmt(r.lostS, 6), fmt(r.replicaAgeS, 13), ` ${agents.find((a) => a.hostId === r.holder)?.name ?? (r.holder || '-')}${r.error !== undefined ? ` FAILED: ${r.error}` : ''}`].join('  '))]
    for (const line of table) log(line)
    return {
      accel,
      metrics,
      details: {
        method: 'three meshvirt agent processes on loopback (separate data dirs, labels site=a/b/c, shipped timing: MESHVIRT_TIMING unset, lease defaults 3 s lease / 0.5 s renew / 0.5 s election margin / 0.5 s jitter); per run a fresh VM pinned to host-1 with --replicas 1 --rpo 2s --spread-by site, 128 MiB, 32 MiB disk, guest writing its counter + 64 KiB per 200 ms tick; kill: SIGKILL of host-1\'s agent, QEMU and fence watchdog in one step, 0–1 s (random) after the replica is in sync and the lease held; ready = MESHVIRT-READY in the holder\'s serial log; running = the holder\'s vm show (inspectVm over its control socket, every 100 ms); phases from the holder\'s JSON log; host-1 restarted on the same port between runs, then the VM deleted',
        times: 'seconds from the kill',
        data_lost: `ticks = last counter printed on host-1 − MESHVIRT-DISK on the holder; seconds = ticks × ${TICK_MS} ms (nominal tick; the measured tick under TCG is in runs[].tickMsMeasured); replica age = kill − the promoted point's taken-at`,
        load_average_1m: { before: round(loadBefore, 2), after: round(loadavg()[0] as number, 2) },
        wall_s: round((Date.now() - t00) / 1000, 1),
        source: gitState(),
        runs: results.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' ? round(v, 3) : v])))
      }
    }
  }
}

/** The commit measured and the agent sources that differed from it (the tree is shared: dist/ is built from it). */
function gitState (): { commit: string, uncommitted_under_packages: string[] } {
  const git = (args: string[]): string => { try { return execFileSync('git', ['-C', REPO, ...args], { encoding: 'utf8' }).trim() } catch { return '' } }
  return { commit: git(['rev-parse', 'HEAD']), uncommitted_under_packages: git(['status', '--porcelain', '--', 'packages']).split('\n').filter((l) => l !== '').map((l) => l.slice(3)) }
}

function fmt (v: number | undefined, width: number): string {
  return (v === undefined ? '-' : v.toFixed(2)).padStart(width)
}
