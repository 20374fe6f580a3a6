/**
 * Monitoring of one agent: Prometheus metrics, the signed cluster event stream, the dashboard.
 *
 * @example
 * ```ts
 * const monitoring = await attachMonitoring({
 *   config: defaultMonitorConfig(dataDir),          // 127.0.0.1, a free port, <dataDir>/monitor.token
 *   clusterName, privateKey: identity.privateKey, mesh, ledger, vms, broker, hypervisor, log,
 *   events                                          // vm:changed → VM events, placement:done → metrics
 * })
 * // control handler → monitoring.controlHandlers
 * console.log(monitoring.metricsUrl, monitoring.dashboardUrl)   // Authorization: Bearer <token>
 * monitoring.events.subscribe((r) => console.log(r.event.kind, r.event.vmName))
 * await monitoring.stop()                          // before the mesh node stops
 * ```
 */
export { attachMonitoring, defaultMonitorConfig, MONITOR_TOKEN_FILE, DEFAULT_MONITOR_HOST, DEFAULT_MONITOR_PORT, type MonitorConfig, type MonitoringDeps, type Monitoring, type ControlRequestHandler } from './attach-monitoring.js'
export { createAgentMetrics, VM_STATES, type AgentMetrics, type MetricsSources } from './agent-metrics.js'
export { EventBus, EVENTS_PROTOCOL, eventTopic, type EventCounters } from './event-bus.js'
export { EventRing, DEFAULT_RING_CAPACITY, type EventRecord, type EventQuery, type EventPage } from './event-ring.js'
export { signEvent, openSignedEvent, type EventRejectReason } from './signed-event.js'
export { eventListView, type EventListView } from './event-view.js'
export { clusterSnapshot, type ClusterSnapshot } from './cluster-snapshot.js'
export type { ClusterEvent, EventKind, EventDraft } from './cluster-event.js'
export { parseMonitorListen } from './monitor-listen.js'
export { queryDriveStats, type DriveStats } from './block-stats.js'
