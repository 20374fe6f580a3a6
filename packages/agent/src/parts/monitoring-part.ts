import type { PrivateKey } from '@libp2p/interface'
import { attachMonitoring, type MonitorConfig, type Monitoring } from '../monitor/index.js'
import type { Broker } from '../negotiate/broker.js'
import type { VmRecords } from '../records/vm-records.js'
import type { GuestRestarter } from '../vm/guest-restarter.js'
import type { HostParts } from './host-parts.js'
import type { MigrationPart } from './migration-part.js'
import type { ReplicationPart } from './replication-part.js'

export interface MonitoringPartOptions {
  config: MonitorConfig
  /** Signs this host's cluster events. */
  privateKey: PrivateKey
  broker: Broker
  vmRecords: VmRecords
  restarter: GuestRestarter
  migration?: MigrationPart
  replicas?: ReplicationPart
  /** Process metrics (RSS, CPU) describe this process: meaningless for in-process test clusters. */
  processMetrics: boolean
}

/**
 * `/metrics`, the signed cluster events and the dashboard, over every part that has figures to
 * tell (placements, migrations, replicas, leases, restarts, VMs of dead hosts).
 */
export async function startMonitoring (p: HostParts, o: MonitoringPartOptions): Promise<Monitoring> {
  const { selfId, root, lease } = p
  const mon = await attachMonitoring({
    events: p.events,
    config: o.config,
    clusterName: p.config.cluster,
    privateKey: o.privateKey,
    mesh: p.node,
    ledger: p.ledger,
    vms: p.vms,
    broker: o.broker,
    ...(o.migration !== undefined ? { migrations: o.migration.source } : {}),
    ...(o.replicas !== undefined ? { replication: o.replicas.replication } : {}),
    hypervisor: p.hypervisor,
    leaseRefusals: () => lease.current?.service.refusals,
    unknownVms: () => o.vmRecords.snapshotVms(),
    log: root.child('monitor', { host: selfId }),
    processMetrics: o.processMetrics
  })
  p.teardown.add('monitoring', async () => { await mon.stop() })
  o.restarter.registerMetrics(mon.metrics.registry)
  o.vmRecords.registerMetrics(mon.metrics.registry)
  return mon
}
