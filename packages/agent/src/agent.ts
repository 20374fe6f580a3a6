import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Hypervisor } from '@meshvirt/hypervisor'
import type { HostNetwork } from '@meshvirt/network'
import { createMeshNode, type MeshNode, type TimingPreset, type VmSummary } from '@meshvirt/mesh'
import type { AgentConfig } from './config/agent-config.js'
import { HostAdminState } from './host/admin-state.js'
import { bootHost } from './host/host-boot.js'
import { Advertiser } from './host/advertiser.js'
import type { HostInventory, HypervisorFacts } from './host/inventory.js'
import { meshTiming, timingFromEnv } from './host/mesh-timing.js'
import { CONTROL_SOCKET, listenError, preflight, type Preflight } from './host/preflight.js'
import type { LeaseService } from './lease/lease-service.js'
import { ResourceLedger } from './ledger/resource-ledger.js'
import { createLogger, type Logger } from './log/logger.js'
import type { Monitoring } from './monitor/index.js'
import { Broker } from './negotiate/broker.js'
import { NameClaims } from './negotiate/name-authority.js'
import type { Accepting } from './negotiate/negotiate-service.js'
import { PeerClient } from './negotiate/peer-client.js'
import { balanceFeature, type BalancePart } from './parts/balance-part.js'
import type { BalanceKnobs } from './balance/index.js'
import { accessFeature } from './parts/access-part.js'
import { startControl } from './parts/control-part.js'
import { usageFeature } from './parts/usage-part.js'
import { Features } from './parts/feature.js'
import { startFailover } from './parts/failover-part.js'
import type { HostParts, LeaseRef } from './parts/host-parts.js'
import { startMigration } from './parts/migration-part.js'
import { startMonitoring } from './parts/monitoring-part.js'
import { imageFeature } from './parts/image-part.js'
import { guestConfigFeature } from './parts/guest-config-part.js'
import { groupFeature } from './parts/group-part.js'
import { networkFeature } from './parts/network-part.js'
import { serveNegotiation } from './parts/negotiate-part.js'
import { startReplication } from './parts/replication-part.js'
import { recordsPart } from './parts/records-part.js'
import { heldReplicaSummaries } from './replication/replica-keeper.js'
import { LeaseRecords } from './store/lease-records.js'
import { ReplicaRecords } from './store/replica-records.js'
import type { VmRow } from './store/state-store.js'
import { AgentEvents } from './util/agent-events.js'
import { Teardown } from './util/teardown.js'
import { GuestRestarter } from './vm/guest-restarter.js'
import { VmDetails } from './vm/vm-details.js'
import { VmManager } from './vm/vm-manager.js'
import { VmPreparation, type VmResource } from './vm/vm-preparation.js'

export { CONTROL_SOCKET }
/** Written at start, removed at stop: how scripts and tests find a running agent's addresses. */
export const AGENT_INFO_FILE = 'agent.json'
export { ADVERT_COALESCE_MS } from './host/mesh-timing.js'

export interface RunAgentOptions {
  log?: Logger
  /** Gossip and liveness timing preset: 'lan' (default), 'wan', or 'local' for tests. */
  timing?: TimingPreset
  /** A ready hypervisor (tests and benchmarks: a SimHypervisor per in-process agent). */
  hypervisor?: { driver: Hypervisor, facts: HypervisorFacts }
  /** Overrides of the measured inventory (tests and benchmarks give hosts a chosen size). */
  inventory?: Partial<HostInventory>
  reservationTtlMs?: number
  /** The host's network driver (tests: a SimHostNetwork per in-process agent); default from `config.network`. */
  hostNetwork?: HostNetwork
  /**
   * Per-VM resources beyond the disks, prepared in this order for every VM that comes to exist here
   * (create, incoming migration, promotion) and released in reverse (vm/vm-preparation.ts).
   */
  vmResources?: VmResource[]
  /** Balancing knobs (tests and benchmarks shorten the timings); default: balance/balance-knobs.ts. */
  balance?: Partial<BalanceKnobs>
}

export interface RunningAgent {
  hostId: string
  incarnation: number
  addrs: string[]
  controlSocket: string
  /** The HTTPS API's address, when `--api-listen` asked for one. */
  apiUrl?: string
  inventory: HostInventory
  mesh: MeshNode
  monitoring: Monitoring
  /** What the parts announce in this process (vm:changed, placement:done, …): tests and benchmarks follow them too. */
  events: AgentEvents
  hypervisor: Hypervisor
  ledger: ResourceLedger
  vms: VmManager
  broker: Broker
  /** The lease protocol (replicated VMs), when the driver can replicate. */
  lease: LeaseService | undefined
  /** Rebalancing: the setting this host follows and its loop. */
  balance: BalancePart
  stop: () => Promise<void>
}

/**
 * Starts the host agent: data dir and state store, identity, inventory and hypervisor, the
 * mesh node with capacity gossip, the negotiation and control protocols, and the local control
 * socket. Guests that survived an agent restart are re-attached before the agent says ready.
 */
export async function runAgent (config: AgentConfig, opts: RunAgentOptions = {}): Promise<RunningAgent> {
  const root = opts.log ?? createLogger({ level: config.logLevel, component: 'meshvirt' })
  // Whatever the configuration alone can tell is wrong stops the agent before it creates anything.
  const checked = preflight(config)
  const teardown = new Teardown()
  const unwind = async (log: Logger): Promise<void> => {
    for (const f of await teardown.run()) log.warn(`stopping ${f.name} failed`, { err: f.error.message })
  }
  let agent: StartedAgent
  try {
    agent = await startAgent(config, opts, checked, teardown, root)
  } catch (err) {
    // Fail whole or not at all: what had started stops, in reverse, before the error is reported.
    await unwind(root)
    throw err
  }
  const { quiesce, log, ...running } = agent
  let stopped: Promise<void> | undefined
  return {
    ...running,
    stop: async () => {
      stopped ??= (async () => {
        quiesce()
        await unwind(log)
        log.info('agent stopped')
      })()
      await stopped
    }
  }
}

interface StartedAgent extends Omit<RunningAgent, 'stop'> {
  /** First step of a stop: refuse new work, restart no guest. */
  quiesce: () => void
  log: Logger
}

/** Starts every part in order, adding each one's stop to `teardown` as it comes up. */
async function startAgent (config: AgentConfig, opts: RunAgentOptions, checked: Preflight, teardown: Teardown, root: Logger): Promise<StartedAgent> {
  const { identity, created, clusterKey, incarnation, hv, inventory, store, log } = await bootHost(config, opts, teardown, root)
  const selfId = identity.hostId
  // What the parts tell each other (the advert, monitoring and the restart policy follow them).
  const events = new AgentEvents((event, err) => { log.error('an event listener failed', { event, err: (err as Error).message }) })
  const admin = new HostAdminState(store, () => { events.emit('host:changed', {}) })
  const records = new ReplicaRecords(store)
  const leaseRef: LeaseRef = {}
  const ledger = new ResourceLedger(store, {
    total: { vcpus: inventory.vcpus, memoryBytes: inventory.memoryBytes, diskBytes: inventory.diskBytes },
    hostReserved: config.hostReserved,
    overcommit: config.overcommit,
    guestOverheadBytes: (hv.driver.guestMemoryOverheadMiB ?? 0) * 2 ** 20
  }, Date.now, () => { events.emit('ledger:changed', {}) })
  let monitoring: Monitoring | undefined
  const leases = new LeaseRecords(store)
  // The features (parts/feature.ts), one line each: their per-VM resources, advert fields, claims and commands.
  const feature = { selfId, config, root, store, events, teardown, localVms: (): VmRow[] => vms.list() }
  const networks = networkFeature(feature, opts.hostNetwork)
  const balance = balanceFeature(feature, { ...config.balance, ...opts.balance })
  const groups = groupFeature(feature)
  const access = accessFeature(feature, clusterKey)
  // Load sampled every 15 s (1 s with the test timing, so suites see charts fill).
  const usage = usageFeature(feature, (opts.timing ?? timingFromEnv()) === 'local' ? 1_000 : undefined)
  const features = new Features([await imageFeature(feature), networks, guestConfigFeature(networks.networkOf), balance, groups, access, usage])
  const preparation = new VmPreparation({ resources: [...features.vmResources(), ...opts.vmResources ?? []], log: root.child('vm', { host: selfId }) })
  const details = new VmDetails()
  features.addDetails(details)
  // A VM found down at recovery starts only once a peer said it was not force-deleted meanwhile.
  const otherVms = recordsPart({ selfId, store, root, teardown, expectPeers: config.bootstrap.length > 0 })
  const recoveryGate = otherVms.recoveryGate
  const vms = new VmManager({
    selfId, store, ledger, leases, hypervisor: hv.driver, preparation, details, recoveryGate, log: root.child('vm', { host: selfId }), events,
    // A replicated guest starts only while its lease is held: another host may run it otherwise.
    mayRun: (vm) => !isReplicated(vm) || leaseRef.current?.service.state(vm.id)?.running === true
  })
  // Replicated VMs carry their replicas' lag (replication starts later: read through a late reference).
  let lagOf: (vmId: string) => number | undefined = () => undefined
  const withLag = (list: VmSummary[]): VmSummary[] => list.map((v) => { const lag = lagOf(v.id); return lag === undefined ? v : { ...v, replicaLagMs: Math.round(lag) } })
  const advertiser = new Advertiser({ inventory, config, store, ledger, admin, events, vms: () => [...withLag(balance.annotate(vms.summaries())), ...heldReplicaSummaries(records)], features: () => features.advert() })
  teardown.add('advert', () => { advertiser.stop() })
  // Restart policy: a guest that exits on its own is started again by its owner, with back-off.
  const restarter = new GuestRestarter({
    vms, log: root.child('restart', { host: selfId }), gate: otherVms.restartGate,
    emit: (d) => { void monitoring?.events.emit({ kind: 'vm-restarted', ...d }).catch(() => {}) }
  })
  details.add('restarts', (vm) => ({ restarts: restarter.restarts(vm.id) }))
  events.on('guest:exited', ({ vm, reason }) => { restarter.onExit(vm, reason) })
  teardown.add('guest restarter', () => { restarter.stop() })
  let stopping = false

  // Guests keep running: the agent is not the VMs' parent (re-attached at next start).
  teardown.add('vms', async () => { await vms.close() })
  await vms.recover()
  const node = await createMeshNode({
    privateKey: identity.privateKey,
    listen: config.listen,
    bootstrap: config.bootstrap,
    clusterKey,
    clusterName: config.cluster,
    incarnation,
    timing: meshTiming(opts.timing ?? timingFromEnv(), config.heartbeatMs),
    advert: advertiser.content(),
    onInboundRefused: (r) => { log.warn('refused inbound connections before their handshake: too many in flight from one address', { refused: r.refused, from: r.addresses, sinceMs: r.windowMs }) },
    onRequestFailed: (r) => { log.warn('a peer\'s request got no answer', { protocol: r.protocol, peer: r.peer, stage: r.stage, err: r.error.message }) }
  }).catch((err: unknown) => { throw listenError(err, config.listen) })
  teardown.add('mesh', async () => { await node.stop() })
  advertiser.attach(node)
  node.view.subscribe((e) => {
    if (e.type === 'updated' || e.host.self) return
    log.info(`host ${e.type}`, { peer: e.host.hostId, hostname: e.host.advert.hostname })
  })
  const peers = new PeerClient(node)
  const nameClaims = new NameClaims(store, Date.now, (key) => features.keyUser(key))
  const vmRecords = otherVms.start({
    view: node.view, peers, vms,
    releaseName: (name, vmId) => { nameClaims.bind({ name, vmId, owner: '', release: true }) },
    onForceDeleted: async (vmId) => { await features.vmForceDeleted(vmId) }
  })
  await features.attach({ selfId, view: node.view, peers, node })

  // The parts, each started over the running core (parts/), in order: migration and replication when
  // the driver offers them, monitoring, failover (which emits monitoring's events) with replication;
  // then the protocols that answer for them all: negotiation, and last the control API.
  const parts: HostParts = { selfId, config, root, store, ledger, leases, records, vms, preparation, details, hypervisor: hv.driver, node, peers, events, teardown, lease: leaseRef, replicaBases: features.replicaBases() }
  const migration = await startMigration(parts)
  const replicas = await startReplication(parts)
  if (replicas !== undefined) lagOf = (id) => replicas.replication.maxLagMs(id)
  const broker = new Broker({ selfId, view: node.view, peers, events, claims: features.specClaims(), log: root.child('broker', { host: selfId }), ...(opts.reservationTtlMs !== undefined ? { reservationTtlMs: opts.reservationTtlMs } : {}) })
  const mon = monitoring = await startMonitoring(parts, { config: checked.monitor, privateKey: identity.privateKey, broker, vmRecords, restarter, migration, replicas, processMetrics: opts.hypervisor === undefined })
  balance.start(parts, { migration, emit: async (d) => await mon.events.emit(d) })
  groups.emitTo((d) => { void mon.events.emit(d).catch(() => {}) })
  if (replicas !== undefined) await startFailover(parts, { keeper: replicas.keeper, events: mon.events, restarted: !created })
  const accepting = (): Accepting => stopping ? { ok: false, reason: 'shutting-down' } : admin.get() !== 'active' ? { ok: false, reason: 'draining' } : { ok: true }
  await serveNegotiation(parts, { accepting, names: nameClaims, migration, replicas })
  const controlSocket = checked.controlSocket
  const { control } = await startControl(parts, { controlSocket, broker, admin, vmRecords, monitoring: mon, migration, replicas, extra: features.handlers(), onDeleted: async (vm) => { await features.vmDeleted(vm) } })
  // The HTTPS API's modules (server, OpenAPI document, console socket) load only when it is asked for.
  const api = checked.api === undefined ? undefined : await (await import('./parts/api-part.js')).startApi(parts, { listen: checked.api, control, controlSocket, access, emit: (d) => { void mon.events.emit(d).catch(() => {}) } })
  const addrs = node.multiaddrs()
  const infoFile = join(config.dataDir, AGENT_INFO_FILE)
  teardown.add('agent.json', async () => { await rm(infoFile, { force: true }) })
  await writeFile(infoFile, JSON.stringify({ hostId: selfId, pid: process.pid, incarnation, addrs, controlSocket, metricsUrl: mon.metricsUrl, dashboardUrl: mon.dashboardUrl, ...(api !== undefined ? { apiUrl: api.url } : {}) }, null, 2) + '\n')
  log.info('agent ready', { addrs, controlSocket, vms: vms.list().length })

  return {
    hostId: selfId,
    incarnation,
    addrs,
    controlSocket,
    ...(api !== undefined ? { apiUrl: api.url } : {}),
    inventory,
    mesh: node,
    monitoring: mon,
    events,
    hypervisor: hv.driver,
    ledger,
    vms,
    broker,
    lease: leaseRef.current?.service,
    balance,
    log,
    quiesce: () => {
      stopping = true
      restarter.stop()
      vmRecords.stop()
    }
  }
}

/** A VM whose spec asks for replicas. */
function isReplicated (vm: VmRow): boolean {
  return vm.spec.replicas > 0
}
