import type { VmStats } from '@meshvirt/hypervisor'
import type { HostCapacity, Liveness, MeshStats } from '@meshvirt/mesh'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { MigrationStats } from '../migrate/migration-source.js'
import type { BrokerStats, PlacementTiming } from '../negotiate/placement-negotiation.js'
import { VM_RUN_STATES } from '../store/state-store.js'
import type { DriveStats } from './block-stats.js'
import type { EventCounters } from './event-bus.js'

/** Every run state a VM record can be in: all are exported, 0 included, so sums and alerts see no holes. */
export const VM_STATES = VM_RUN_STATES
const LIVENESS: Liveness[] = ['alive', 'suspect', 'dead']
/**
 * Placement latencies on a LAN are ms to tens of ms (DESIGN: reserve p50 < 10 ms); slow tails reach
 * seconds, and an overloaded cluster (25 agents on two cores) tens of seconds: up to a minute, since
 * a quantile past the last finite bucket can only say "more than that".
 */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
const ATTEMPT_BUCKETS = [1, 2, 3, 4, 6, 8, 12, 16, 24]

/** Where the numbers come from: read at scrape time, so an idle agent pays nothing between scrapes. */
export interface MetricsSources {
  capacity: () => HostCapacity
  /** The VMs this host owns. */
  vms: () => Array<{ id: string, name: string, state: string, epoch: number }>
  /** Measured usage of a running VM (the hypervisor on its owner). */
  vmStats?: (id: string) => Promise<VmStats>
  /** Block I/O of a running VM's drives (QMP query-blockstats; QEMU only). */
  vmDriveStats?: (id: string) => Promise<DriveStats[]>
  broker?: () => BrokerStats
  /** Placements negotiating and waiting at this broker, and its adaptive limit (negotiate/broker.ts). */
  placementConcurrency?: () => { running: number, queued: number, limit: number }
  migrations?: () => MigrationStats
  mesh?: () => MeshStats
  /** Replicated VMs this host owns: each holder's lag, and each VM's point figures. */
  replication?: () => ReplicationMetrics
  hosts?: () => Array<{ liveness: Liveness }>
  events?: () => EventCounters
  /** Lease renewals and votes this host refused, by reason (LeaseService.refusals); undefined before the lease starts. */
  leaseRefusals?: () => ReadonlyMap<string, number> | undefined
  /** Node's process metrics (CPU, RSS, event-loop lag); off when several agents share a process. */
  processMetrics?: boolean
}

export interface ReplicationMetrics {
  holders: Array<{ vm: string, name: string, holder: string, state: string, lagSeconds: number | undefined }>
  vms: Array<{ vm: string, name: string, points: number, lastPauseMs: number, maxPauseMs: number }>
}

export interface AgentMetrics {
  registry: Registry
  /** Feed of Broker.onPlaced. */
  observePlacement: (timing: PlacementTiming) => void
  render: () => Promise<string>
  contentType: string
}

type Res = 'vcpus' | 'memoryBytes' | 'diskBytes'

/** The agent's Prometheus registry (its own, not prom-client's global one: agents may share a process in tests). */
export function createAgentMetrics (src: MetricsSources): AgentMetrics {
  const registry = new Registry()
  const registers = [registry]
  /** Counts renders: per-VM measurements are taken once per scrape and shared by the gauges reading them. */
  let scrape = 0
  // Event-loop lag sampled every 100 ms, not prom-client's 10 ms: measured here, the 10 ms timer
  // alone costs an idle agent ~0.35 % of a core (100 ms: ~0.02 %), and lag that matters is longer.
  if (src.processMetrics === true) collectDefaultMetrics({ register: registry, prefix: 'meshvirt_agent_', eventLoopMonitoringPrecision: 100 })

  const resource = (name: string, help: string, key: Res): void => {
    // eslint-disable-next-line no-new
    new Gauge({
      name,
      help,
      labelNames: ['kind'],
      registers,
      collect () {
        const c = src.capacity()
        const ratio = key === 'vcpus' ? c.overcommit.cpu : key === 'memoryBytes' ? c.overcommit.memory : c.overcommit.disk
        this.set({ kind: 'total' }, c.total[key])
        this.set({ kind: 'host_reserved' }, c.hostReserved[key])
        this.set({ kind: 'allocatable' }, Math.floor((c.total[key] - c.hostReserved[key]) * ratio))
        this.set({ kind: 'allocated' }, c.allocated[key])
        this.set({ kind: 'reserved' }, c.reservations[key])
      }
    })
  }
  resource('meshvirt_host_vcpus', 'vCPUs of this host: total, host_reserved, allocatable (after overcommit), allocated to VMs, reserved by placements in flight', 'vcpus')
  resource('meshvirt_host_memory_bytes', 'Memory of this host, by kind as for meshvirt_host_vcpus', 'memoryBytes')
  resource('meshvirt_host_disk_bytes', 'Disk of this host, by kind as for meshvirt_host_vcpus', 'diskBytes')

  // eslint-disable-next-line no-new
  new Gauge({
    name: 'meshvirt_vms',
    help: 'VMs this host owns, by state (summed over hosts, each VM counts once)',
    labelNames: ['state'],
    registers,
    collect () {
      const counts = new Map<string, number>(VM_STATES.map((s) => [s, 0]))
      for (const vm of src.vms()) counts.set(vm.state, (counts.get(vm.state) ?? 0) + 1)
      this.reset()
      for (const [state, n] of counts) this.set({ state }, n)
    }
  })
  // eslint-disable-next-line no-new
  new Gauge({
    name: 'meshvirt_vm_info',
    help: 'One series per VM this host owns (value 1), labelled with its id, name, state and epoch',
    labelNames: ['vm', 'name', 'state', 'epoch'],
    registers,
    collect () {
      this.reset()
      for (const vm of src.vms()) this.set({ vm: vm.id, name: vm.name, state: vm.state, epoch: String(vm.epoch) }, 1)
    }
  })

  if (src.vmStats !== undefined) {
    const stats = src.vmStats
    // One stats round per scrape, shared by the three gauges below.
    let round: { scrape: number, result: Promise<Array<{ vm: { id: string, name: string }, s: VmStats }>> } | undefined
    const measure = async (): Promise<Array<{ vm: { id: string, name: string }, s: VmStats }>> => {
      if (round?.scrape !== scrape) {
        const running = src.vms().filter((v) => v.state === 'running')
        round = {
          scrape,
          result: Promise.all(running.map(async (vm) => await stats(vm.id).then((s) => ({ vm, s }), () => undefined)))
            .then((all) => all.filter((x) => x !== undefined))
        }
      }
      return await round.result
    }
    const perVm = (name: string, help: string, value: (s: VmStats) => number): void => {
      // eslint-disable-next-line no-new
      new Gauge({
        name,
        help,
        labelNames: ['vm', 'name'],
        registers,
        async collect () {
          const all = await measure()
          this.reset()
          for (const { vm, s } of all) this.set({ vm: vm.id, name: vm.name }, value(s))
        }
      })
    }
    perVm('meshvirt_vm_cpu_seconds', 'CPU time used by the VM\'s QEMU process since it started (rate() it for CPU use)', (s) => s.cpuSeconds)
    perVm('meshvirt_vm_rss_bytes', 'Resident memory of the VM\'s QEMU process', (s) => s.rssBytes)
    perVm('meshvirt_vm_uptime_seconds', 'Seconds since the VM\'s QEMU process started', (s) => s.uptimeSeconds)
  }

  if (src.vmDriveStats !== undefined) {
    const drives = src.vmDriveStats
    let round: { scrape: number, result: Promise<Array<{ vm: { id: string, name: string }, d: DriveStats }>> } | undefined
    const measure = async (): Promise<Array<{ vm: { id: string, name: string }, d: DriveStats }>> => {
      if (round?.scrape !== scrape) {
        const running = src.vms().filter((v) => v.state === 'running')
        round = {
          scrape,
          result: Promise.all(running.map(async (vm) => await drives(vm.id).then((ds) => ds.map((d) => ({ vm, d })), () => [])))
            .then((all) => all.flat())
        }
      }
      return await round.result
    }
    const perDrive = (name: string, help: string, value: (d: DriveStats) => number): void => {
      // eslint-disable-next-line no-new
      new Counter({
        name,
        help,
        labelNames: ['vm', 'name', 'drive'],
        registers,
        async collect () {
          const all = await measure()
          this.reset()
          for (const { vm, d } of all) this.inc({ vm: vm.id, name: vm.name, drive: d.drive }, value(d))
        }
      })
    }
    perDrive('meshvirt_vm_block_read_bytes_total', 'Bytes the VM read from a drive since its QEMU started (QMP query-blockstats)', (d) => d.readBytes)
    perDrive('meshvirt_vm_block_written_bytes_total', 'Bytes the VM wrote to a drive since its QEMU started', (d) => d.writeBytes)
    perDrive('meshvirt_vm_block_reads_total', 'Read operations on a drive since the VM\'s QEMU started', (d) => d.readOps)
    perDrive('meshvirt_vm_block_writes_total', 'Write operations on a drive since the VM\'s QEMU started', (d) => d.writeOps)
  }

  // Counters kept elsewhere (broker, mesh, event bus) are copied in at scrape time.
  const mirror = (name: string, help: string, labelNames: string[], read: () => Array<[Record<string, string>, number]> | undefined): void => {
    // eslint-disable-next-line no-new
    new Counter({
      name,
      help,
      labelNames,
      registers,
      collect () {
        const values = read()
        if (values === undefined) return
        this.reset()
        for (const [labels, v] of values) this.inc(labels, v)
      }
    })
  }
  if (src.leaseRefusals !== undefined) {
    const read = src.leaseRefusals
    mirror('meshvirt_lease_refusals_total', 'Lease renewals and votes this host refused, by reason (not-member and unknown-vm: a host claimed a role it may not hold)', ['reason'], () => {
      const m = read()
      return m === undefined ? undefined : [...m].map(([reason, n]) => [{ reason }, n])
    })
  }
  if (src.broker !== undefined) {
    const b = src.broker
    mirror('meshvirt_placements_total', 'VM placements this agent brokered, by outcome', ['outcome'], () => [[{ outcome: 'placed' }, b().placed], [{ outcome: 'failed' }, b().failed]])
    mirror('meshvirt_reserve_requests_total', 'Reserve requests this broker sent, by answer (reserved, refused, unreachable)', ['answer'], () => {
      const s = b()
      return [[{ answer: 'refused' }, s.refusals], [{ answer: 'unreachable' }, s.unreachable], [{ answer: 'reserved' }, Math.max(0, s.attempts - s.refusals - s.unreachable)]]
    })
    mirror('meshvirt_reserve_refusals_total', 'Reserve requests refused by hosts, by the reason they gave', ['reason'], () => Object.entries(b().refusedBy).map(([reason, n]) => [{ reason }, n]))
  }
  if (src.placementConcurrency !== undefined) {
    const c = src.placementConcurrency
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'meshvirt_placements_in_flight',
      help: 'Placements this broker is negotiating (running), waiting for a slot (queued), and its limit, which halves when peers are too busy to answer in time',
      labelNames: ['state'],
      registers,
      collect () {
        const now = c()
        this.set({ state: 'running' }, now.running)
        this.set({ state: 'queued' }, now.queued)
        this.set({ state: 'limit' }, now.limit)
      }
    })
  }
  if (src.migrations !== undefined) {
    const m = src.migrations
    mirror('meshvirt_migrations_total', 'Live migrations this host ran as the source, by outcome', ['outcome'], () => [[{ outcome: 'succeeded' }, m().succeeded], [{ outcome: 'failed' }, m().failed]])
    const last = (name: string, help: string, read: () => number): void => {
      // eslint-disable-next-line no-new
      new Gauge({ name, help, registers, collect () { this.set(read()) } })
    }
    last('meshvirt_migrations_in_flight', 'Live migrations running now with this host as the source', () => m().inFlight)
    last('meshvirt_migration_last_downtime_ms', 'Guest pause of the last successful migration out of this host (QEMU\'s measure)', () => m().lastDowntimeMs)
    last('meshvirt_migration_last_total_ms', 'Whole duration of the last successful migration out of this host', () => m().lastTotalMs)
  }
  if (src.replication !== undefined) {
    const r = src.replication
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'meshvirt_replica_lag_seconds',
      help: 'How old each replica holder\'s data is (the RPO achieved), per VM this host owns and holder',
      labelNames: ['vm', 'name', 'holder'],
      registers,
      collect () {
        this.reset()
        for (const h of r().holders) if (h.lagSeconds !== undefined) this.set({ vm: h.vm, name: h.name, holder: h.holder }, h.lagSeconds)
      }
    })
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'meshvirt_replica_holders',
      help: 'Replica holders of the VMs this host owns, by state (seeding, in-sync, lagging, unreachable)',
      labelNames: ['state'],
      registers,
      collect () {
        this.reset()
        const counts = new Map<string, number>()
        for (const h of r().holders) counts.set(h.state, (counts.get(h.state) ?? 0) + 1)
        for (const [state, n] of counts) this.set({ state }, n)
      }
    })
    mirror('meshvirt_replication_points_total', 'Replication points taken of each VM this host owns', ['vm', 'name'], () => r().vms.map((v) => [{ vm: v.vm, name: v.name }, v.points]))
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'meshvirt_replication_max_pause_ms',
      help: 'Longest guest I/O drain a replication point caused (the QMP transaction), per VM',
      labelNames: ['vm', 'name'],
      registers,
      collect () {
        this.reset()
        for (const v of r().vms) this.set({ vm: v.vm, name: v.name }, v.maxPauseMs)
      }
    })
  }
  const reserveSeconds = new Histogram({ name: 'meshvirt_placement_reserve_seconds', help: 'From a placement\'s first Reserve to the Reserved answer that won', buckets: LATENCY_BUCKETS, registers })
  const commitSeconds = new Histogram({ name: 'meshvirt_placement_commit_seconds', help: 'From the start of a placement\'s negotiation to Committed', buckets: LATENCY_BUCKETS, registers })
  const attempts = new Histogram({ name: 'meshvirt_placement_attempts', help: 'Reserve attempts a successful placement needed', buckets: ATTEMPT_BUCKETS, registers })

  if (src.mesh !== undefined) {
    const m = src.mesh
    // eslint-disable-next-line no-new
    new Gauge({ name: 'meshvirt_gossip_peers', help: 'libp2p peers this host is connected to', registers, collect () { this.set(m().peers) } })
    // eslint-disable-next-line no-new
    new Gauge({ name: 'meshvirt_gossip_connections', help: 'Open libp2p connections', registers, collect () { this.set(m().connections) } })
    // eslint-disable-next-line no-new
    new Gauge({ name: 'meshvirt_request_buffer_bytes', help: 'Bytes of inbound requests being read now (all peers; bounded per peer and in all)', registers, collect () { this.set(m().requestBuffer?.bytes ?? 0) } })
    mirror('meshvirt_request_buffer_refusals_total', 'Inbound requests refused (stream reset) because their bytes would pass the per-peer or the total budget', ['over'], () => {
      const r = m().requestBuffer?.refused
      return r === undefined ? undefined : [[{ over: 'peer' }, r.peer], [{ over: 'total' }, r.total]]
    })
    // eslint-disable-next-line no-new
    new Gauge({ name: 'meshvirt_inbound_handshakes_pending', help: 'Inbound connections in the handshake now (before the cluster key and noise have proven the peer)', registers, collect () { this.set(m().inbound?.pending ?? 0) } })
    mirror('meshvirt_inbound_refused_total', 'Inbound connections refused before their handshake, by reason (per-address: that address already had its bound of handshakes in flight)', ['reason'], () => {
      const i = m().inbound
      return i === undefined ? undefined : [[{ reason: 'per-address' }, i.refusedPerAddress]]
    })
    mirror('meshvirt_gossip_reconnects_total', 'Dials to hosts this host declared dead and still tries (a healed partition rejoins through them), by outcome: tried, answered', ['outcome'], () => {
      const r = m().reconnects
      return r === undefined ? undefined : [[{ outcome: 'tried' }, r.tried], [{ outcome: 'answered' }, r.answered]]
    })
    mirror('meshvirt_gossip_adverts_published_total', 'Adverts this host published', [], () => [[{}, m().published]])
    mirror('meshvirt_gossip_adverts_received_total', 'Adverts received, by outcome (accepted, rejected:<reason>, ignored:<reason>)', ['outcome'], () => {
      const a = m().adverts
      return [
        [{ outcome: 'accepted' }, a.accepted],
        ...Object.entries(a.rejected).map(([r, n]): [Record<string, string>, number] => [{ outcome: `rejected:${r}` }, n]),
        ...Object.entries(a.ignored).map(([r, n]): [Record<string, string>, number] => [{ outcome: `ignored:${r}` }, n])
      ]
    })
    mirror('meshvirt_gossip_suspicions_total', 'Suspicion notices (a host reported unreachable): published by this host, accepted from others, rejected:<reason>', ['outcome'], () => {
      const n = m().suspicions
      return [
        [{ outcome: 'published' }, n.published],
        [{ outcome: 'accepted' }, n.accepted],
        ...Object.entries(n.rejected).map(([r, v]): [Record<string, string>, number] => [{ outcome: `rejected:${r}` }, v])
      ]
    })
  }
  if (src.hosts !== undefined) {
    const h = src.hosts
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'meshvirt_cluster_hosts',
      help: 'Hosts in this agent\'s view of the cluster (itself included), by liveness',
      labelNames: ['liveness'],
      registers,
      collect () {
        const hosts = h()
        for (const l of LIVENESS) this.set({ liveness: l }, hosts.filter((x) => x.liveness === l).length)
      }
    })
  }
  if (src.events !== undefined) {
    const e = src.events
    mirror('meshvirt_events_total', 'Cluster events handled: emitted here, received by gossip, pulled from emitters', ['origin'], () => {
      const c = e()
      return [[{ origin: 'emitted' }, c.emitted], [{ origin: 'gossip' }, c.received], [{ origin: 'pulled' }, c.pulled]]
    })
    mirror('meshvirt_events_rejected_total', 'Events refused by the topic validator or a pull, by reason', ['reason'], () => Object.entries(e().rejected).map(([reason, n]) => [{ reason }, n]))
  }

  return {
    registry,
    observePlacement: (t) => {
      reserveSeconds.observe(t.reserveMs / 1000)
      commitSeconds.observe(t.commitMs / 1000)
      attempts.observe(t.attempts)
    },
    render: async () => {
      scrape++
      return await registry.metrics()
    },
    contentType: registry.contentType
  }
}
