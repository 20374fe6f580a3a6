/**
 * vm-start: what one real QEMU guest costs to start with `@meshvirt/hypervisor`.
 *  - driver_overhead_ms: start() until QEMU runs and QMP answers (includes QEMU's own init:
 *    -daemonize returns once the machine is built), p50 over the runs.
 *  - boot_ready_s: start() until the test guest prints MESHVIRT-READY on its serial console.
 *  - bare_qemu_launch_ms: the same command line launched by hand, for scale: most of start() is
 *    QEMU's own initialisation, the driver adds the disk-free bookkeeping and the QMP handshake.
 *  - qemu_rss_mb: the QEMU process's resident memory one second after the guest is ready.
 * The accelerator comes from the real boot probe (cached in .cache/bench); runs are sequential
 * because two TCG guests on this 2-core machine would measure each other.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { QemuHypervisor, buildQemuArgv, probeAccelerator, vmPaths, waitForSerialLine, type Accelerator, type VmSpec } from '@meshvirt/hypervisor'
import { ensureGuest, type TestGuest } from '@meshvirt/testkit'
import { percentile, type Benchmark, type Metric } from './harness.js'

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const READY = 'MESHVIRT-READY'

interface Run { overheadMs: number, bareQemuMs: number, readyS: number, rssMb: number, stopMs: number, stopReason: string }

/** The same QEMU command line launched by hand (no driver): the part of start() that is QEMU's own init. */
function bareQemuMs (dataDir: string, spec: VmSpec, accel: Accelerator): number {
  const bare = { ...spec, id: `${spec.id}-bare`, disks: [] }
  const paths = vmPaths(dataDir, bare)
  mkdirSync(paths.dir, { recursive: true })
  const t0 = performance.now()
  execFileSync('qemu-system-x86_64', buildQemuArgv({ spec: bare, paths, accel }), { cwd: paths.dir, stdio: 'ignore' })
  const ms = performance.now() - t0
  process.kill(Number(readFileSync(paths.pidFile, 'utf8')), 'SIGKILL')
  rmSync(paths.dir, { recursive: true, force: true })
  return ms
}

async function rssMb (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024
}

async function measure (accel: Accelerator, runs: number, guest: TestGuest, log: (l: string) => void): Promise<Run[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'mv-bench-'))
  const hv = new QemuHypervisor({ dataDir, accel, imageDirs: [guest.dir] })
  const results: Run[] = []
  try {
    for (let i = 0; i < runs; i++) {
      const id = `bench-${i}`
      const spec: VmSpec = { id, vcpus: 1, memoryMiB: 128, boot: { kind: 'kernel', kernel: guest.kernel, initrd: guest.initrd, cmdline: guest.cmdline }, disks: [{ name: 'vda', sizeMiB: 16 }] }
      const bare = bareQemuMs(dataDir, spec, accel)
      const vm = await hv.create(spec)
      const t0 = performance.now()
      const started = await hv.start(id)
      const overheadMs = performance.now() - t0
      await waitForSerialLine(vm.paths.serialLog, READY, { timeoutMs: 60_000, pollMs: 5 })
      const readyS = (performance.now() - t0) / 1000
      await new Promise((resolve) => setTimeout(resolve, 1000))
      const rss = await rssMb(started.pid as number)
      const s0 = performance.now()
      const stopped = await hv.stop(id)
      const run = { overheadMs, bareQemuMs: bare, readyS, rssMb: rss, stopMs: performance.now() - s0, stopReason: stopped.exit?.reason ?? '?' }
      results.push(run)
      log(`${accel} run ${i + 1}/${runs}: start() ${overheadMs.toFixed(1)} ms (bare QEMU ${bare.toFixed(1)} ms), ready ${readyS.toFixed(2)} s, RSS ${rss.toFixed(0)} MiB, graceful stop ${run.stopMs.toFixed(0)} ms (${run.stopReason})`)
      await hv.destroy(id)
    }
  } finally {
    for (const vm of await hv.list()) if (vm.state === 'running') await hv.kill(vm.id).catch(() => {})
    await hv.close()
    rmSync(dataDir, { recursive: true, force: true })
  }
  return results
}

const round = (v: number, digits: number): number => Number(v.toFixed(digits))

export const vmStart: Benchmark = {
  name: 'vm-start',
  description: 'real QEMU guest: driver overhead of start(), boot to ready marker, QEMU RSS',
  run: async ({ quick, log }) => {
    const guest = await ensureGuest()
    const probe = await probeAccelerator({ kernel: guest.kernel, initrd: guest.initrd, cacheFile: join(REPO, '.cache', 'bench', 'accel-probe.json') })
    log(`accelerator probe: ${probe.accel}${probe.cached ? ' (cached)' : ''}: ${probe.reason}`)
    const accels: Accelerator[] = probe.accel === 'kvm' ? ['kvm', 'tcg'] : ['tcg']
    const runs = quick ? 3 : 8
    const byAccel: Record<string, Run[]> = {}
    for (const accel of accels) byAccel[accel] = await measure(accel, runs, guest, log)
    const main = byAccel[probe.accel] ?? []
    const p = (key: keyof Run, q: number): number => percentile(main.map((r) => r[key] as number), q)
    const metrics: Record<string, Metric> = {
      driver_overhead_ms: { value: round(p('overheadMs', 50), 1), unit: 'ms', target: '< 100' },
      driver_overhead_p90_ms: { value: round(p('overheadMs', 90), 1), unit: 'ms' },
      bare_qemu_launch_ms: { value: round(p('bareQemuMs', 50), 1), unit: 'ms' },
      boot_ready_s: { value: round(p('readyS', 50), 2), unit: 's' },
      boot_ready_p90_s: { value: round(p('readyS', 90), 2), unit: 's' },
      qemu_rss_mb: { value: round(p('rssMb', 50), 0), unit: 'MiB' },
      graceful_stop_ms: { value: round(p('stopMs', 50), 0), unit: 'ms' }
    }
    if (byAccel.kvm !== undefined && probe.accel === 'kvm') {
      metrics.boot_ready_tcg_s = { value: round(percentile((byAccel.tcg ?? []).map((r) => r.readyS), 50), 2), unit: 's' }
    }
    return {
      accel: probe.accel,
      metrics,
      details: { runs_per_accel: runs, guest: { memoryMiB: 128, vcpus: 1, disk: '16 MiB qcow2' }, probe, runs: byAccel }
    }
  }
}
