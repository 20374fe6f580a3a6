import { join } from 'node:path'
import type { PrivateKey } from '@libp2p/interface'
import type { Hypervisor } from '@meshvirt/hypervisor'
import type { MeshNode } from '@meshvirt/mesh'
import type { meshvirt } from '@meshvirt/proto'
import type { ResourceLedger } from '../ledger/resource-ledger.js'
import type { Logger } from '../log/logger.js'
import type { Broker } from '../negotiate/broker.js'
import type { VmManager } from '../vm/vm-manager.js'
import { loadOrCreateToken } from './access-token.js'
import type { MigrationStats } from '../migrate/migration-source.js'
import { createAgentMetrics, type AgentMetrics, type ReplicationMetrics } from './agent-metrics.js'
import { queryDriveStats, type QmpLike } from './block-stats.js'
import type { EventDraft } from './cluster-event.js'
import { clusterSnapshot, type SnapshotVm } from './cluster-snapshot.js'
import { EventBus } from './event-bus.js'
import { EventRing } from './event-ring.js'
import { watchHostEvents } from './host-event-source.js'
import { listEventsHandler } from './list-events-handler.js'
import { MonitorServer } from './monitor-server.js'
import { watchVmEvents } from './vm-event-source.js'
import type { AgentEvents } from '../util/agent-events.js'

export const MONITOR_TOKEN_FILE = 'monitor.token'
export const DEFAULT_MONITOR_HOST = '127.0.0.1'
/** 0 = a free port, written to agent.json; give a fixed one (e.g. 7480) for Prometheus scrape configs. */
export const DEFAULT_MONITOR_PORT = 0
/** How long stopping waits for the host-stopping event to leave. */
const GOODBYE_MS = 500

/** The agent's monitoring settings (its slice of AgentConfig). */
export interface MonitorConfig {
  /** Serve /metrics and the dashboard over HTTP; the event stream runs either way. */
  http: boolean
  host: string
  port: number
  tokenFile: string
  ringCapacity?: number
}

export function defaultMonitorConfig (dataDir: string): MonitorConfig {
  return { http: true, host: DEFAULT_MONITOR_HOST, port: DEFAULT_MONITOR_PORT, tokenFile: join(dataDir, MONITOR_TOKEN_FILE) }
}

export interface MonitoringDeps {
  config: MonitorConfig
  clusterName: string
  /** The host identity key, which signs this host's events. */
  privateKey: PrivateKey
  mesh: MeshNode
  ledger: Pick<ResourceLedger, 'capacity'>
  vms: Pick<VmManager, 'list'>
  broker?: Broker
  /** Replication of the VMs this host owns, when the driver offers it. */
  replication?: { metrics: () => ReplicationMetrics }
  /** The source side of live migrations, when the driver offers them. */
  migrations?: { stats: MigrationStats }
  /**
   * The owner-side measurements of its VMs: RSS, CPU and uptime (`stats`), and block I/O when the
   * driver also offers QEMU's monitor (QemuHypervisor.monitor).
   */
  hypervisor?: Pick<Hypervisor, 'stats'> & { monitor?: (id: string) => Promise<QmpLike> }
  /** The lease protocol's refusals by reason (it starts after monitoring, hence a getter). */
  leaseRefusals?: () => ReadonlyMap<string, number> | undefined
  log: Logger
  /** Node process metrics; leave off when several agents share one process (tests). */
  processMetrics?: boolean
  /** VMs whose owner is dead or gone (the VM records), shown as unknown on the dashboard. */
  unknownVms?: () => SnapshotVm[]
  /** The agent's events: VM changes become VM events, placements feed the placement metrics. */
  events?: AgentEvents
}

export type ControlRequestHandler = (req: meshvirt.v1.ControlRequest) => Promise<meshvirt.v1.IControlResponse>

export interface Monitoring {
  events: EventBus
  metrics: AgentMetrics
  /** Base URL of the HTTP endpoints; undefined when `http` is off. */
  url: string | undefined
  metricsUrl: string | undefined
  dashboardUrl: string | undefined
  /** The bearer token of the HTTP endpoints (also in `config.tokenFile`). */
  token: string | undefined
  /** Control API bodies this module answers, by oneof name. */
  controlHandlers: Record<string, ControlRequestHandler>
  stop: () => Promise<void>
}

/**
 * Monitoring for one agent: Prometheus metrics, the signed cluster event stream over the mesh,
 * and the dashboard. Composed from the agent's parts without changing them; call after the mesh
 * node is up, and `stop()` before stopping it.
 */
export async function attachMonitoring (deps: MonitoringDeps): Promise<Monitoring> {
  const { mesh, log } = deps
  const ring = new EventRing(deps.config.ringCapacity)
  const bus = new EventBus({ mesh, clusterName: deps.clusterName, privateKey: deps.privateKey, ring, log: log.child('events') })
  const emit = (d: EventDraft): void => {
    bus.emit(d).catch((err: unknown) => { log.warn('could not emit an event', { kind: d.kind, vm: d.vmId, err: (err as Error).message }) })
  }
  const hv = deps.hypervisor
  const metrics = createAgentMetrics({
    capacity: () => deps.ledger.capacity(),
    vms: () => deps.vms.list(),
    ...(hv !== undefined ? { vmStats: async (id: string) => await hv.stats(id) } : {}),
    // Called as a method (this-bound): QemuHypervisor.monitor serializes per VM through its instance.
    ...(typeof hv?.monitor === 'function' ? { vmDriveStats: async (id: string) => { const qmp = await hv.monitor?.(id); return qmp === undefined ? [] : await queryDriveStats(qmp) } } : {}),
    ...(deps.broker !== undefined ? { broker: () => (deps.broker as Broker).stats, placementConcurrency: () => (deps.broker as Broker).concurrency } : {}),
    ...(deps.migrations !== undefined ? { migrations: () => (deps.migrations as { stats: MigrationStats }).stats } : {}),
    mesh: () => mesh.stats(),
    ...(deps.replication !== undefined ? { replication: () => (deps.replication as { metrics: () => ReplicationMetrics }).metrics() } : {}),
    hosts: () => mesh.view.hosts(),
    events: () => bus.counters,
    ...(deps.leaseRefusals !== undefined ? { leaseRefusals: deps.leaseRefusals } : {}),
    // The process's own figures (event-loop lag sampled every 100 ms, an observer on every GC) only
    // for a /metrics someone can read: with the HTTP server off nothing ever renders them.
    processMetrics: (deps.processMetrics ?? false) && deps.config.http
  })
  await bus.start()
  const vmEvents = watchVmEvents({ view: mesh.view, listVms: () => deps.vms.list(), emit })
  const unsubscribe = [
    deps.events?.on('placement:done', (t) => { metrics.observePlacement(t) }),
    deps.events?.on('vm:changed', () => { vmEvents.changed() }),
    deps.events?.on('image:fetched', (f) => {
      const what = `${f.ref !== '' ? f.ref : f.digest.slice(0, 19)} (${f.digest.slice(0, 19)})`
      const done = f.repairedChunks === undefined ? `fetched: ${f.sizeBytes} bytes` : `repaired: ${f.repairedChunks} chunk(s) damaged on this host's disk fetched again`
      emit(f.error === undefined
        ? { kind: 'image-fetched', vmId: f.vmId, message: `image ${what} ${done} in ${(f.ms / 1000).toFixed(1)} s, every chunk verified` }
        : { kind: 'image-fetch-failed', vmId: f.vmId, message: `image ${what} not ${f.repairedChunks === undefined ? 'fetched' : `repaired (${f.repairedChunks} chunk(s) damaged on this host's disk)`} after ${(f.ms / 1000).toFixed(1)} s: ${f.error}` })
    })
  ]
  const stopHostEvents = watchHostEvents(mesh.view, mesh.hostId, emit)
  emit({ kind: 'host-joined', subjectHostId: mesh.hostId, message: `joined the cluster (incarnation ${mesh.incarnation})` })

  let server: MonitorServer | undefined
  let token: string | undefined
  if (deps.config.http) {
    token = await loadOrCreateToken(deps.config.tokenFile)
    server = new MonitorServer({
      host: deps.config.host,
      port: deps.config.port,
      token,
      metrics: async () => ({ body: await metrics.render(), contentType: metrics.contentType }),
      snapshot: () => clusterSnapshot(mesh.hostId, mesh.view.hosts(), Date.now(), deps.unknownVms?.() ?? []),
      onViewChange: (listener) => mesh.view.subscribe(() => { listener() }),
      events: bus,
      log: log.child('http')
    })
    try {
      await server.start()
    } catch (err) {
      for (const u of unsubscribe) u?.()
      vmEvents.stop()
      stopHostEvents()
      await bus.stop()
      throw err
    }
    log.info('monitoring listening', { metrics: `${server.url}/metrics`, dashboard: `${server.url}/`, tokenFile: deps.config.tokenFile })
  }
  const url = server?.url

  let stopped: Promise<void> | undefined
  return {
    events: bus,
    metrics,
    url,
    metricsUrl: url === undefined ? undefined : `${url}/metrics`,
    dashboardUrl: url === undefined ? undefined : `${url}/`,
    token,
    controlHandlers: { listEvents: listEventsHandler(bus) },
    stop: async () => {
      stopped ??= (async () => {
        for (const u of unsubscribe) u?.()
        vmEvents.stop()
        stopHostEvents()
        const goodbye = bus.emit({ kind: 'host-stopping', subjectHostId: mesh.hostId, message: 'agent shutting down' }).catch(() => {})
        await Promise.race([goodbye, new Promise((resolve) => setTimeout(resolve, GOODBYE_MS).unref())])
        await server?.stop()
        await bus.stop()
      })()
      await stopped
    }
  }
}
