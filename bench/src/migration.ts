/**
 * migration: live migration of a running test guest with its disk between two hosts, each its own
 * process (a mesh node + a QEMU driver, see migration-host.ts), through the mesh tunnel
 * (QEMU ↔ unix ↔ libp2p stream, noise + cluster key ↔ unix ↔ QEMU) and, in the same run and on the
 * same guest, directly over the destination's unix sockets (the tightest direct path here: no TCP).
 * The guest ping-pongs between the hosts, alternating the two paths.
 *  - downtime_ms_256_disk: the guest's pause through the tunnel, 256 MiB + disk, median: from the
 *    source's vCPUs stopping (QMP STOP) to the destination's resuming (QMP RESUME), so it includes
 *    the disk mirror's completion and the hand-over, not only QEMU's own `downtime`.
 *  - downtime_ratio_vs_direct: that median ÷ the direct path's median in the same run.
 *  - total_ms_256_disk: migrateOut() start to return through the tunnel (mirror + RAM + switchover).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execFileSync } from 'node:child_process'
import type { IncomingMigration, MigrateOutOptions, MigrationResult, VmSpec } from '@meshvirt/hypervisor'
import { generateClusterKey } from '@meshvirt/mesh'
import type { HostRequest } from './migration-host.js'
import { percentile, type Benchmark, type Metric } from './harness.js'

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
/** The pause a guest should see; QEMU's default is 300 ms. */
const DOWNTIME_LIMIT_MS = 10
const PARAMS: Partial<MigrateOutOptions> = { downtimeLimitMs: DOWNTIME_LIMIT_MS, timeoutMs: 120_000, onTimeout: 'cancel', autoConverge: true }

interface Host { name: string, proc: ChildProcess, hostId: string, addr: string, call: <T>(req: HostRequest) => Promise<T> }
type Path = 'tunnel' | 'direct'
interface Sample {
  path: Path, memoryMiB: number, workload: string, pauseMs: number, qemuDowntimeMs: number, totalMs: number, ramMs: number, mirrorMs: number, ramBytes: number
  /** The pause, split: vCPUs stopped → QEMU completed → mirrors completed → vCPUs resumed on the destination. */
  split: { stopToCompletedMs: number, mirrorsMs: number, handOverMs: number }
}

function guest (): { dir: string, kernel: string, initrd: string, cmdline: string } {
  const dir = process.env.MESHVIRT_GUEST_DIR ?? join(REPO, '.cache', 'guest')
  execFileSync('bash', [join(REPO, 'scripts', 'build-guest')], { env: { ...process.env, MESHVIRT_GUEST_DIR: dir }, stdio: 'ignore' })
  const env = Object.fromEntries(readFileSync(join(dir, 'guest.env'), 'utf8').split('\n').filter((l) => l.includes('='))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
  return { dir, kernel: env.KERNEL as string, initrd: env.INITRD as string, cmdline: env.CMDLINE as string }
}

async function startHost (name: string, init: object): Promise<Host> {
  const proc = fork(fileURLToPath(new URL('./migration-host.js', import.meta.url)), [], { env: { ...process.env, MV_BENCH_HOST: JSON.stringify(init) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
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
  const call = async <T>(req: HostRequest): Promise<T> => await new Promise<T>((resolve, reject) => {
    const n = ++seq
    pending.set(n, { resolve: (v) => { resolve(v as T) }, reject })
    proc.send({ seq: n, req })
  })
  return { name, proc, hostId, addr, call }
}

/** One migration, as the agents will run it: prepare on `to`, migrate from `from`, resume on `to`, quit on `from`. */
async function migrate (from: Host, to: Host, spec: VmSpec, path: Path, session: string): Promise<Omit<Sample, 'workload'>> {
  const incoming = await to.call<IncomingMigration>({ op: 'prepare', spec, ...(path === 'tunnel' ? { session, peer: from.hostId } : {}) })
  const via = path === 'tunnel'
    ? { tunnel: { peer: to.hostId, session } }
    : { direct: { migrationSocket: incoming.migrationSocket, ...(incoming.nbdSocket !== undefined ? { nbdSocket: incoming.nbdSocket } : {}) } }
  let out: { result: MigrationResult, ramBytes?: number }
  try {
    out = await from.call({ op: 'migrate-out', id: spec.id, via, params: PARAMS })
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
    split: { stopToCompletedMs: round1(r.completedAt - r.stoppedAt), mirrorsMs: round1(r.mirrorsDoneAt - r.completedAt), handOverMs: round1(resumedAt - r.mirrorsDoneAt) }
  }
}

const median = (xs: number[]): number => percentile(xs, 50)
const round1 = (x: number): number => Math.round(x * 10) / 10

export const migration: Benchmark = {
  name: 'migration',
  description: 'live migration with disk between two host processes: mesh tunnel vs direct unix sockets (TCG)',
  async run ({ quick, log }) {
    const g = guest()
    const loadBefore = loadavg()[0] as number
    const root = mkdtempSync(join(tmpdir(), 'mv-bm-'))
    const clusterKey = Buffer.from(generateClusterKey()).toString('base64')
    const a = await startHost('a', { dataDir: join(root, 'a'), guestDir: g.dir, clusterKey, bootstrap: [] })
    const b = await startHost('b', { dataDir: join(root, 'b'), guestDir: g.dir, clusterKey, bootstrap: [a.addr] })
    const samples: Sample[] = []
    const rounds = quick ? 1 : 3
    const cases = [
      { memoryMiB: 128, workload: 'idle', args: '' },
      { memoryMiB: 256, workload: 'idle', args: '' },
      { memoryMiB: 256, workload: 'dirty 4 MiB/tick', args: 'meshvirt.dirty_kib=4096 meshvirt.disk_kib=64' }
    ]
    try {
      for (const c of cases) {
        const spec: VmSpec = {
          id: `mig-${c.memoryMiB}-${c.workload.split(' ')[0] as string}`, vcpus: 1, memoryMiB: c.memoryMiB,
          boot: { kind: 'kernel', kernel: g.kernel, initrd: g.initrd, cmdline: `${g.cmdline} ${c.args}`.trim() },
          disks: [{ name: 'vda', sizeMiB: 64 }]
        }
        await a.call({ op: 'boot', spec })
        let here = a
        let there = b
        for (let i = 0; i < rounds * 2; i++) {
          const path: Path = i % 2 === 0 ? 'tunnel' : 'direct'
          const s = await migrate(here, there, spec, path, `${spec.id}-${i}`)
          samples.push({ ...s, workload: c.workload })
          log(`${String(c.memoryMiB).padStart(3)} MiB ${c.workload.padEnd(16)} ${path.padEnd(6)} ${here.name}→${there.name}: pause ${s.pauseMs.toFixed(1)} ms (QEMU downtime ${s.qemuDowntimeMs} ms; stop→completed ${s.split.stopToCompletedMs}, mirrors ${s.split.mirrorsMs}, hand-over ${s.split.handOverMs}), total ${s.totalMs} ms (mirror ${s.mirrorMs}, RAM ${s.ramMs}), ${(s.ramBytes / 1048576).toFixed(1)} MiB of RAM sent`)
          ;[here, there] = [there, here]
        }
        await here.call({ op: 'destroy', id: spec.id })
      }
    } finally {
      await Promise.allSettled([a.call({ op: 'shutdown' }), b.call({ op: 'shutdown' })])
      rmSync(root, { recursive: true, force: true })
    }
    const pick = (path: Path, mem: number, workload = 'idle'): Sample[] => samples.filter((s) => s.path === path && s.memoryMiB === mem && s.workload === workload)
    const stat = (xs: Sample[], f: (s: Sample) => number): number => round1(median(xs.map(f)))
    const t256 = pick('tunnel', 256)
    const d256 = pick('direct', 256)
    const metrics: Record<string, Metric> = {
      downtime_ms_256_disk: { value: stat(t256, (s) => s.pauseMs), unit: 'ms', target: '< 50' },
      downtime_ratio_vs_direct: { value: Math.round(median(t256.map((s) => s.pauseMs)) / median(d256.map((s) => s.pauseMs)) * 100) / 100, unit: 'ratio', target: '≤ 1.5' },
      total_ms_256_disk: { value: stat(t256, (s) => s.totalMs), unit: 'ms' },
      direct_downtime_ms_256_disk: { value: stat(d256, (s) => s.pauseMs), unit: 'ms' },
      direct_total_ms_256_disk: { value: stat(d256, (s) => s.totalMs), unit: 'ms' },
      qemu_downtime_ms_256_disk: { value: stat(t256, (s) => s.qemuDowntimeMs), unit: 'ms' },
      downtime_ms_128_disk: { value: stat(pick('tunnel', 128), (s) => s.pauseMs), unit: 'ms' },
      direct_downtime_ms_128_disk: { value: stat(pick('direct', 128), (s) => s.pauseMs), unit: 'ms' },
      total_ms_128_disk: { value: stat(pick('tunnel', 128), (s) => s.totalMs), unit: 'ms' },
      direct_total_ms_128_disk: { value: stat(pick('direct', 128), (s) => s.totalMs), unit: 'ms' },
      downtime_ms_256_disk_dirty: { value: stat(pick('tunnel', 256, 'dirty 4 MiB/tick'), (s) => s.pauseMs), unit: 'ms' },
      direct_downtime_ms_256_disk_dirty: { value: stat(pick('direct', 256, 'dirty 4 MiB/tick'), (s) => s.pauseMs), unit: 'ms' }
    }
    return {
      accel: 'tcg',
      metrics,
      details: {
        downtimeLimitMs: DOWNTIME_LIMIT_MS,
        disk: '64 MiB qcow2, mirrored over NBD (blockdev-mirror sync=full)',
        direct: 'the destination QEMU\'s own unix sockets (no TCP, no Node in the path)',
        tunnel: 'two host processes, libp2p over loopback TCP: cluster-key pnet + noise + yamux, one stream per channel',
        rounds,
        // Two cores shared with other work: the tunnel's two Node processes compete with both QEMUs.
        loadAverage1m: { before: round1(loadBefore), after: round1(loadavg()[0] as number) },
        samples
      }
    }
  }
}
