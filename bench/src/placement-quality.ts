/**
 * placement-quality: how well and how fast `@meshvirt/placement` decides, on seeded random
 * workloads (pure computation, no hosts or guests involved).
 *  - binpack: 1,000 VMs of mixed sizes arrive one by one onto 100 hosts of mixed sizes; hosts
 *    used ÷ the lower bound (fewest hosts, largest first, whose capacity covers the demand in
 *    every dimension).
 *  - spread: coefficient of variation of host utilisation after the same arrivals, against a
 *    random-fit baseline (a uniformly random feasible host) in the same run.
 *  - decide: one decision against views of 100, 1,000 and 10,000 half-full hosts, full scan vs
 *    sampling, and with the default options (which sample only above 1,000 hosts).
 */
import { loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import {
  GIB, allocatableCapacity, assumePlaced, placeBatch, placeVm, seededRandom,
  type HostSnapshot, type PlacementOptions, type PlacementRequest, type Resources
} from '@meshvirt/placement'
import { percentile, type Benchmark, type Metric } from './harness.js'

const HOST_TYPES: Array<{ share: number, total: Resources }> = [
  { share: 0.4, total: { vcpus: 16, memoryBytes: 64 * GIB, diskBytes: 1024 * GIB } },
  { share: 0.4, total: { vcpus: 32, memoryBytes: 128 * GIB, diskBytes: 2048 * GIB } },
  { share: 0.2, total: { vcpus: 64, memoryBytes: 256 * GIB, diskBytes: 4096 * GIB } }
]
const HOST_RESERVED: Resources = { vcpus: 2, memoryBytes: 8 * GIB, diskBytes: 64 * GIB }
const VM_SIZES: Array<{ share: number, size: Resources }> = [
  { share: 0.3, size: { vcpus: 1, memoryBytes: 1 * GIB, diskBytes: 20 * GIB } },
  { share: 0.3, size: { vcpus: 2, memoryBytes: 4 * GIB, diskBytes: 40 * GIB } },
  { share: 0.25, size: { vcpus: 4, memoryBytes: 8 * GIB, diskBytes: 80 * GIB } },
  { share: 0.1, size: { vcpus: 8, memoryBytes: 16 * GIB, diskBytes: 160 * GIB } },
  { share: 0.05, size: { vcpus: 16, memoryBytes: 32 * GIB, diskBytes: 320 * GIB } }
]
/** A harder mix for the same hosts: VMs up to half a small host, so holes are large and packing matters. */
const BIG_VM_SIZES: Array<{ share: number, size: Resources }> = [
  { share: 0.3, size: { vcpus: 2, memoryBytes: 6 * GIB, diskBytes: 60 * GIB } },
  { share: 0.3, size: { vcpus: 4, memoryBytes: 12 * GIB, diskBytes: 120 * GIB } },
  { share: 0.25, size: { vcpus: 6, memoryBytes: 20 * GIB, diskBytes: 200 * GIB } },
  { share: 0.15, size: { vcpus: 8, memoryBytes: 28 * GIB, diskBytes: 280 * GIB } }
]
const ZERO: Resources = { vcpus: 0, memoryBytes: 0, diskBytes: 0 }

function pick<T extends { share: number }> (items: T[], random: () => number): T {
  let r = random()
  for (const item of items) {
    r -= item.share
    if (r < 0) return item
  }
  return items[items.length - 1] as T
}

function makeHosts (n: number, seed: string): HostSnapshot[] {
  const random = seededRandom(seed)
  return Array.from({ length: n }, (_, i) => ({
    id: `host-${i}`,
    state: 'alive',
    adminState: 'active',
    labels: { zone: `z${i % 3}`, rack: `r${i % 10}` },
    capacity: {
      total: pick(HOST_TYPES, random).total,
      hostReserved: HOST_RESERVED,
      allocated: ZERO,
      reservations: ZERO,
      overcommit: { cpu: 4, memory: 1, disk: 1 }
    },
    accelerator: 'kvm',
    cpuFlags: new Set<string>(),
    vmGroups: {}
  }))
}

function makeVms (n: number, seed: string, policy: 'binpack' | 'spread', sizes = VM_SIZES): PlacementRequest[] {
  const random = seededRandom(seed)
  return Array.from({ length: n }, (_, i) => ({ resources: pick(sizes, random).size, policy, seed: `${seed}-${i}` }))
}

/**
 * The offline anchor of docs/benchmarks.md: first-fit decreasing (largest VM first, into the first of the
 * hosts, largest first, where it fits). It knows every VM in advance, which placement never does.
 */
function firstFitDecreasing (hosts: HostSnapshot[], vms: PlacementRequest[]): number {
  const free = hosts.map((h) => allocatableCapacity(h.capacity)).sort((a, b) => b.memoryBytes - a.memoryBytes)
  const used = new Set<number>()
  const sorted = [...vms].sort((a, b) => b.resources.memoryBytes - a.resources.memoryBytes)
  for (const vm of sorted) {
    const i = free.findIndex((f) => f.vcpus >= vm.resources.vcpus && f.memoryBytes >= vm.resources.memoryBytes && f.diskBytes >= vm.resources.diskBytes)
    if (i < 0) continue
    const f = free[i] as Resources
    free[i] = { vcpus: f.vcpus - vm.resources.vcpus, memoryBytes: f.memoryBytes - vm.resources.memoryBytes, diskBytes: f.diskBytes - vm.resources.diskBytes }
    used.add(i)
  }
  return used.size
}

/** Places VMs one after another, each seeing the ones before it; `choose` picks among the ranked candidates. */
function simulate (hosts: HostSnapshot[], vms: PlacementRequest[], options: PlacementOptions,
  choose: (n: number) => number = () => 0): { hosts: HostSnapshot[], unplaced: number } {
  const view = [...hosts]
  const index = new Map(view.map((h, i) => [h.id, i]))
  let unplaced = 0
  for (const vm of vms) {
    const result = placeVm(vm, view, options)
    const c = result.candidates[choose(result.candidates.length)]
    if (c === undefined) { unplaced++; continue }
    const i = index.get(c.hostId) as number
    view[i] = assumePlaced(view[i] as HostSnapshot, vm)
  }
  return { hosts: view, unplaced }
}

/** Fewest hosts whose allocatable capacity covers the demand in every dimension, taking the largest first. */
function lowerBound (hosts: HostSnapshot[], vms: PlacementRequest[]): number {
  const dims: Array<keyof Resources> = ['vcpus', 'memoryBytes', 'diskBytes']
  let bound = 0
  for (const d of dims) {
    const demand = vms.reduce((s, v) => s + v.resources[d], 0)
    const sizes = hosts.map((h) => allocatableCapacity(h.capacity)[d]).sort((a, b) => b - a)
    let sum = 0
    let n = 0
    while (sum < demand && n < sizes.length) sum += sizes[n++] as number
    bound = Math.max(bound, n)
  }
  return bound
}

function utilisation (h: HostSnapshot): number {
  const limit = allocatableCapacity(h.capacity)
  const a = h.capacity.allocated
  return (a.vcpus / limit.vcpus + a.memoryBytes / limit.memoryBytes + a.diskBytes / limit.diskBytes) / 3
}

function coefficientOfVariation (values: number[]): number {
  const mean = values.reduce((s, v) => s + v, 0) / values.length
  const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length
  return Math.sqrt(variance) / mean
}

/** A view `fill` full on average, so filters and scorers see realistic, varied hosts. */
function halfFullView (n: number, seed: string, fill = 0.5): HostSnapshot[] {
  const random = seededRandom(`${seed}-fill`)
  return makeHosts(n, seed).map((h) => {
    const limit = allocatableCapacity(h.capacity)
    const f = fill * 2 * random()
    const used = (x: number): number => Math.floor(x * Math.min(0.98, f))
    return { ...h, capacity: { ...h.capacity, allocated: { vcpus: used(limit.vcpus), memoryBytes: used(limit.memoryBytes), diskBytes: used(limit.diskBytes) } } }
  })
}

/** Decision times in µs, and how many decisions examined the whole view (a sample with no fit falls back). */
function decideMicros (n: number, options: PlacementOptions, decisions: number): { times: number[], fullScans: number } {
  const view = halfFullView(n, `decide-${n}`)
  const vms = makeVms(decisions + 50, `decide-vms-${n}`, 'binpack')
  const times: number[] = []
  let fullScans = 0
  vms.forEach((vm, i) => {
    const start = performance.now()
    const result = placeVm(vm, view, options)
    const us = (performance.now() - start) * 1000
    if (i < 50) return // the first 50 warm the JIT
    times.push(us)
    if (!result.sampled) fullScans++
  })
  return { times, fullScans }
}

/** Per-VM cost of Sparrow-style batch sampling: one pool of d·m hosts shared by a batch of m VMs. */
function batchMicrosPerVm (n: number, batch: number, rounds: number): number[] {
  const view = halfFullView(n, `decide-${n}`)
  const vms = makeVms((rounds + 5) * batch, `batch-vms-${n}`, 'binpack')
  const times: number[] = []
  for (let r = 0; r < rounds + 5; r++) {
    const start = performance.now()
    placeBatch(vms.slice(r * batch, (r + 1) * batch), view, SAMPLED)
    if (r >= 5) times.push((performance.now() - start) * 1000 / batch)
  }
  return times
}

const FULL_SCAN: PlacementOptions = { sampleAbove: Number.POSITIVE_INFINITY }
const SAMPLED: PlacementOptions = { sampleAbove: 0 }

export const placementQuality: Benchmark = {
  name: 'placement-quality',
  description: 'binpack vs lower bound, spread CV vs random fit, decision time at 100/1,000/10,000 hosts',
  run: async ({ quick, log }) => {
    const metrics: Record<string, Metric> = {}
    // p99 decision times on a shared 2-core machine measure the neighbours as much as placement
    const details: Record<string, unknown> = { loadavg1_at_start: loadavg()[0] }
    const hosts = makeHosts(100, 'quality-hosts')

    const packVms = makeVms(1000, 'quality-vms', 'binpack')
    const packed = simulate(hosts, packVms, FULL_SCAN)
    const used = packed.hosts.filter((h) => h.capacity.allocated.memoryBytes > 0).length
    const bound = lowerBound(hosts, packVms)
    metrics.binpack_ratio = { value: used / bound, unit: 'x', target: '≤ 1.10' }
    metrics.binpack_hosts_used = { value: used, unit: 'hosts' }
    metrics.binpack_lower_bound = { value: bound, unit: 'hosts' }
    const ffd = firstFitDecreasing(hosts, packVms)
    metrics.binpack_ratio_ffd = { value: ffd / bound, unit: 'x' }
    details.binpack = { vms: packVms.length, hosts: hosts.length, unplaced: packed.unplaced, firstFitDecreasingHosts: ffd }
    log(`binpack: ${used} hosts used, lower bound ${bound}, first-fit decreasing ${ffd}, ${packed.unplaced} unplaced`)

    const bigVms = makeVms(400, 'quality-big-vms', 'binpack', BIG_VM_SIZES)
    const bigPacked = simulate(hosts, bigVms, FULL_SCAN)
    const bigUsed = bigPacked.hosts.filter((h) => h.capacity.allocated.memoryBytes > 0).length
    const bigBound = lowerBound(hosts, bigVms)
    const bigFfd = firstFitDecreasing(hosts, bigVms)
    metrics.binpack_ratio_big_vms = { value: bigUsed / bigBound, unit: 'x' }
    metrics.binpack_ratio_big_vms_ffd = { value: bigFfd / bigBound, unit: 'x' }
    details.binpack_big_vms = { vms: bigVms.length, used: bigUsed, lowerBound: bigBound, firstFitDecreasingHosts: bigFfd, unplaced: bigPacked.unplaced, sizes: BIG_VM_SIZES }
    log(`binpack, big VMs: ${bigUsed} hosts used, lower bound ${bigBound}, first-fit decreasing ${bigFfd}, ${bigPacked.unplaced} unplaced`)

    const sampledPack = simulate(makeHosts(2000, 'quality-hosts-large'), makeVms(20000, 'quality-vms-large', 'binpack'), { sampleAbove: 0 })
    const usedSampled = sampledPack.hosts.filter((h) => h.capacity.allocated.memoryBytes > 0).length
    const boundSampled = lowerBound(makeHosts(2000, 'quality-hosts-large'), makeVms(20000, 'quality-vms-large', 'binpack'))
    metrics.binpack_ratio_sampled_2000 = { value: usedSampled / boundSampled, unit: 'x' }
    details.binpack_sampled = { vms: 20000, hosts: 2000, used: usedSampled, lowerBound: boundSampled, unplaced: sampledPack.unplaced }

    const spreadVms = makeVms(1000, 'quality-vms', 'spread')
    const spread = simulate(hosts, spreadVms, FULL_SCAN)
    const random = seededRandom('random-fit')
    const randomFit = simulate(hosts, spreadVms, FULL_SCAN, (n) => Math.floor(random() * n))
    const cvSpread = coefficientOfVariation(spread.hosts.map(utilisation))
    const cvRandom = coefficientOfVariation(randomFit.hosts.map(utilisation))
    metrics.spread_cv = { value: cvSpread, unit: 'cv' }
    metrics.spread_cv_random_fit = { value: cvRandom, unit: 'cv' }
    metrics.spread_cv_ratio_vs_random = { value: cvSpread / cvRandom, unit: 'x', target: '< 1' }
    details.spread = { unplaced: spread.unplaced, unplacedRandomFit: randomFit.unplaced }
    log(`spread: cv ${cvSpread.toFixed(3)} vs random fit ${cvRandom.toFixed(3)}`)

    const decisions = quick ? 100 : 400
    const decide: Record<string, unknown> = {}
    for (const n of [100, 1000, 10000]) {
      for (const [mode, options] of [['full', FULL_SCAN], ['sampled', SAMPLED], ['default', {}]] as const) {
        const { times, fullScans } = decideMicros(n, options, n === 10000 && mode === 'full' ? Math.min(decisions, 100) : decisions)
        const p50 = percentile(times, 50)
        const p99 = percentile(times, 99)
        decide[`${mode}_${n}`] = { p50_us: p50, p99_us: p99, decisions: times.length, fullScans }
        if (mode !== 'default') metrics[`decide_us_${mode}_${n}`] = { value: p50, unit: 'µs' }
        if (mode === 'default' && n === 1000) {
          metrics.decide_us_1000 = { value: p50, unit: 'µs', target: '< 1000' }
          metrics.decide_us_1000_p99 = { value: p99, unit: 'µs' }
        }
        log(`decide ${mode} ${n} hosts: p50 ${p50.toFixed(1)} µs, p99 ${p99.toFixed(1)} µs`)
      }
    }
    const batch = batchMicrosPerVm(10000, 16, quick ? 20 : 100)
    metrics.decide_us_batch16_10000 = { value: percentile(batch, 50), unit: 'µs/VM' }
    decide.batch16_10000 = { p50_us_per_vm: percentile(batch, 50), p99_us_per_vm: percentile(batch, 99), batches: batch.length }
    log(`batch of 16 on 10000 hosts: p50 ${percentile(batch, 50).toFixed(1)} µs per VM`)
    details.decide = decide
    details.workload = { hostTypes: HOST_TYPES, hostReserved: HOST_RESERVED, vmSizes: VM_SIZES, overcommit: { cpu: 4, memory: 1, disk: 1 } }
    return { metrics, details }
  }
}
