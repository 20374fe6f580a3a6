/**
 * replication: continuous disk replication of a real guest (TCG here) through `/meshvirt/replica/1.0.0`.
 * A 256 MiB disk, 192 MiB of it filled before boot (so the first full copy has data to move), and the
 * test guest writing its counter plus 256 KiB of disk every 200 ms (1.25 MiB/s steady). Every RPO
 * interval (1 s) the owner takes a point (bitmap + blockdev-backup sync=incremental) and ships it to
 * every holder in parallel, each behind its own bandwidth bound; phase 1 has one holder, phase 2 two.
 *  - rpo_p99_s: the recovery point actually achieved, sampled at each apply: the age of the holder's data
 *    just before the new point landed (ack of point n − time point n−1 describes): the peak of the
 *    saw-tooth, what a failover at the worst moment would lose. Worst of the two phases.
 *  - lag_*_ms: point taken → applied on the holder (the saw-tooth's trough).
 *  - point size, takePoint() time, the QMP transaction (the only guest I/O drain per cycle), holder apply time.
 *    The first 5 points after each full copy are left out of the steady-state figures and reported as
 *    seeding_rpo_max_s: their age includes the full copy and the backlog written meanwhile (a replica
 *    being seeded, not kept). Phase 2 re-seeds both holders from a new full point (one bitmap per VM:
 *    a holder added later needs a full point, and so the chain restarts for every holder).
 *  - full_copy_*: the first full point: size, time to take + ship + apply, throughput; with the raw
 *    libp2p stream's throughput over the same path as its anchor (stream_baseline_mib_s).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { QemuHypervisor, probeAccelerator, waitForSerialLine, type VmSpec } from '@meshvirt/hypervisor'
import { percentile, type Benchmark, type Metric } from './harness.js'
import { ReplicationRig, type Cycle, type Holder } from './replication-rig.js'

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const MiB = 1024 * 1024
const RPO_INTERVAL_MS = 1000
/** Per holder: high enough not to be the bottleneck of a 1 Gbit/s-class link, yet a real bound. */
const HOLDER_BANDWIDTH = 100 * MiB

interface Sample {
  holders: number
  seq: number
  rpoMs: number
  lagMs: number
  applyMs: number
  /** One of the first SEEDING_CYCLES points after a full copy: their RPO carries the full copy's time and the backlog it left (a replica being seeded, not kept). */
  seeding: boolean
}

function guestFiles (): { dir: string, kernel: string, initrd: string, cmdline: string } {
  const dir = process.env.MESHVIRT_GUEST_DIR ?? join(REPO, '.cache', 'guest')
  execFileSync('bash', [join(REPO, 'scripts', 'build-guest')], { env: { ...process.env, MESHVIRT_GUEST_DIR: dir }, stdio: 'ignore' })
  const env = Object.fromEntries(readFileSync(join(dir, 'guest.env'), 'utf8').split('\n').filter((l) => l.includes('='))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
  return { dir, kernel: env.KERNEL as string, initrd: env.INITRD as string, cmdline: env.CMDLINE as string }
}

/** Incremental cycles every RPO interval (fixed rate: a late cycle starts the next at once). */
async function steady (rig: ReplicationRig, seedingCycles: number, cycles: number, last: Map<Holder, number>, samples: Sample[], log: (l: string) => void): Promise<Cycle[]> {
  const done: Cycle[] = []
  const t0 = performance.now()
  for (let i = 1; i <= seedingCycles + cycles; i++) {
    const wait = t0 + i * RPO_INTERVAL_MS - performance.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    const c = await rig.cycle('incremental')
    c.shipped.forEach((s, h) => {
      const holder = rig.holders[h] as Holder
      samples.push({ holders: rig.holders.length, seq: c.seq, rpoMs: s.ackedAt - (last.get(holder) ?? c.takenAt), lagMs: s.ackedAt - c.takenAt, applyMs: s.applyMs, seeding: i <= seedingCycles })
      last.set(holder, c.takenAt)
    })
    done.push(c)
    if (i % 10 === 0 || i === seedingCycles) log(`${rig.holders.length} holder(s), cycle ${i}/${seedingCycles + cycles}: point ${c.seq} ${(c.pointBytes / 1024).toFixed(0)} KiB, take ${c.takeMs.toFixed(0)} ms (transaction ${c.transactionMs} ms), cycle ${c.cycleMs.toFixed(0)} ms`)
  }
  return done
}

async function full (rig: ReplicationRig, last: Map<Holder, number>, log: (l: string) => void): Promise<Cycle> {
  const c = await rig.cycle('full')
  rig.holders.forEach((h) => last.set(h, c.takenAt))
  const applyMs = Math.max(...c.shipped.map((s) => s.applyMs))
  log(`full point ${c.seq} to ${rig.holders.length} holder(s): ${(c.pointBytes / MiB).toFixed(1)} MiB, take ${c.takeMs.toFixed(0)} ms, total ${c.cycleMs.toFixed(0)} ms (holder apply ${applyMs.toFixed(0)} ms) = ${(c.pointBytes / MiB / (c.cycleMs / 1000)).toFixed(1)} MiB/s`)
  return c
}

const round = (v: number, digits: number): number => Number(v.toFixed(digits))

export const replication: Benchmark = {
  name: 'replication',
  description: 'real guest, steady disk writes: RPO achieved with 1 and 2 replicas, point size and apply time, first full copy',
  run: async ({ quick, log }) => {
    const guest = guestFiles()
    // Two TCG guests' worth of CPU and the ciphers of every stream share 2 cores: neighbours show up in the figures.
    const loadBefore = loadavg()[0] as number
    const probe = await probeAccelerator({ kernel: guest.kernel, initrd: guest.initrd, cacheFile: join(REPO, '.cache', 'bench', 'accel-probe.json') })
    const diskMiB = quick ? 64 : 256
    const fillMiB = quick ? 48 : 192
    const cycles = quick ? 10 : 30
    const seeding = quick ? 3 : 5
    const dataDir = mkdtempSync(join(tmpdir(), 'mv-bench-rep-'))
    const hv = new QemuHypervisor({ dataDir, accel: probe.accel, imageDirs: [guest.dir] })
    const spec: VmSpec = {
      id: 'rep', vcpus: 1, memoryMiB: 128, disks: [{ name: 'vda', sizeMiB: diskMiB }],
      boot: { kind: 'kernel', kernel: guest.kernel, initrd: guest.initrd, cmdline: `${guest.cmdline} meshvirt.disk_kib=256` }
    }
    const rig = new ReplicationRig(hv, 'rep', join(dataDir, 'holders'), HOLDER_BANDWIDTH)
    try {
      const vm = await hv.create(spec)
      // Data behind the guest's first MiB (its counter lives there): a full copy with something to move.
      execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x5a 1M ${fillMiB}M`, vm.paths.disks.vda as string], { stdio: 'ignore' })
      await hv.start('rep')
      await waitForSerialLine(vm.paths.serialLog, 'MESHVIRT-READY', { timeoutMs: 60_000 })
      await rig.start(1)
      await hv.replication.startReplication('rep')
      const last = new Map<Holder, number>()
      const samples: Sample[] = []
      const first = await full(rig, last, log)
      const one = await steady(rig, seeding, cycles, last, samples, log)
      await rig.addHolder()
      const second = await full(rig, last, log)
      const two = await steady(rig, seeding, cycles, last, samples, log)

      const baseline = await rig.streamBaseline(first.pointBytes)
      log(`raw libp2p stream, same path and size: ${baseline.toFixed(1)} MiB/s`)
      const steadyState = samples.filter((s) => !s.seeding)
      const num = (s: Sample, key: 'rpoMs' | 'lagMs' | 'applyMs'): number => s[key]
      const of = (n: number, key: 'rpoMs' | 'lagMs' | 'applyMs', q: number): number => percentile(steadyState.filter((s) => s.holders === n).map((s) => num(s, key)), q)
      const all = (key: 'rpoMs' | 'lagMs' | 'applyMs', q: number): number => percentile(steadyState.map((s) => num(s, key)), q)
      const inc = [...one.slice(seeding), ...two.slice(seeding)]
      const cyc = (f: (c: Cycle) => number, q: number): number => percentile(inc.map(f), q)
      const rpo99 = Math.max(of(1, 'rpoMs', 99), of(2, 'rpoMs', 99))
      const metrics: Record<string, Metric> = {
        rpo_p99_s: { value: round(rpo99 / 1000, 2), unit: 's', target: '≤ 5' },
        rpo_p50_s: { value: round(all('rpoMs', 50) / 1000, 2), unit: 's' },
        rpo_p99_s_1_replica: { value: round(of(1, 'rpoMs', 99) / 1000, 2), unit: 's' },
        rpo_p99_s_2_replicas: { value: round(of(2, 'rpoMs', 99) / 1000, 2), unit: 's' },
        lag_p50_ms: { value: round(all('lagMs', 50), 0), unit: 'ms' },
        lag_p99_ms: { value: round(all('lagMs', 99), 0), unit: 'ms' },
        lag_p99_ms_2_replicas: { value: round(of(2, 'lagMs', 99), 0), unit: 'ms' },
        point_kib_p50: { value: round(cyc((c) => c.pointBytes, 50) / 1024, 0), unit: 'KiB' },
        point_kib_p99: { value: round(cyc((c) => c.pointBytes, 99) / 1024, 0), unit: 'KiB' },
        take_point_ms_p50: { value: round(cyc((c) => c.takeMs, 50), 1), unit: 'ms' },
        guest_io_drain_ms_p99: { value: round(cyc((c) => c.transactionMs, 99), 1), unit: 'ms' },
        apply_ms_p50: { value: round(all('applyMs', 50), 1), unit: 'ms' },
        apply_ms_p99: { value: round(all('applyMs', 99), 1), unit: 'ms' },
        full_copy_mib: { value: round(first.pointBytes / MiB, 1), unit: 'MiB' },
        full_copy_s: { value: round(first.cycleMs / 1000, 2), unit: 's' },
        full_copy_mib_s: { value: round(first.pointBytes / MiB / (first.cycleMs / 1000), 1), unit: 'MiB/s' },
        full_copy_apply_ms: { value: round(first.shipped[0]?.applyMs ?? 0, 0), unit: 'ms' },
        stream_baseline_mib_s: { value: round(baseline, 1), unit: 'MiB/s' },
        seeding_rpo_max_s: { value: round(Math.max(...samples.filter((s) => s.seeding).map((s) => s.rpoMs)) / 1000, 2), unit: 's' }
      }
      return {
        accel: probe.accel,
        metrics,
        details: {
          load_average_1m: { before: round(loadBefore, 2), after: round(loadavg()[0] as number, 2) },
          disk_mib: diskMiB, prefilled_mib: fillMiB, guest_writes: '256 KiB per 200 ms tick (1.25 MiB/s) + the counter', rpo_interval_ms: RPO_INTERVAL_MS,
          holder_bandwidth_bytes_per_s: HOLDER_BANDWIDTH, cycles_per_phase: cycles, seeding_cycles_per_phase: seeding, transport: 'two or three libp2p nodes in one process over loopback TCP (noise, yamux, cluster key)',
          method: 'transaction(block-dirty-bitmap-add persistent + blockdev-backup sync=full), then blockdev-backup sync=incremental per point; extents from qemu-img map, read in place from the point qcow2',
          full_to_two_holders: { mib: round(second.pointBytes / MiB, 1), s: round(second.cycleMs / 1000, 2) },
          cycles: inc.map((c) => ({ seq: c.seq, bytes: c.pointBytes, take_ms: round(c.takeMs, 1), transaction_ms: c.transactionMs, cycle_ms: round(c.cycleMs, 1) })),
          samples: samples.map((s) => ({ ...s, rpoMs: round(s.rpoMs, 0), lagMs: round(s.lagMs, 0), applyMs: round(s.applyMs, 1) }))
        }
      }
    } finally {
      await rig.stop().catch(() => {})
      for (const vm of await hv.list()) if (vm.state === 'running') await hv.kill(vm.id).catch(() => {})
      await hv.close()
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
}
