import { join } from 'node:path'
import { AgentLease } from '../failover/agent-lease.js'
import { FenceWatchdog } from '../fence/fence-watchdog.js'
import { LeaseService } from '../lease/lease-service.js'
import type { EventBus } from '../monitor/event-bus.js'
import type { ReplicaKeeper } from '../replication/replica-keeper.js'
import type { HostParts } from './host-parts.js'

/**
 * Failover: the lease of every replicated VM this host owns, holds or witnesses, and the fence
 * watchdog that stops a guest in time even if this agent dies. Sets `p.lease.current` once running
 * (the parts built before it reach the lease through that).
 */
export async function startFailover (p: HostParts, opts: { keeper: ReplicaKeeper, events: Pick<EventBus, 'emit'>, restarted: boolean }): Promise<void> {
  const { selfId, node } = p
  const log = p.root.child('lease', { host: selfId })
  const watchdog = new FenceWatchdog(join(p.config.dataDir, 'fence'))
  await watchdog.start()
  const hooks = new AgentLease({
    selfId, vms: p.vms, records: p.records, keeper: opts.keeper, leases: p.leases, view: node.view, hypervisor: p.hypervisor, watchdog, log,
    emit: (d) => { void opts.events.emit({ kind: d.kind, vmId: d.vmId, vmName: d.vmName, vmEpoch: d.vmEpoch, message: d.message }).catch(() => {}) }
  })
  const service = new LeaseService({ mesh: node }, { hooks, restarted: opts.restarted, log })
  await service.start()
  try {
    await hooks.attach(service)
  } catch (err) {
    await service.stop()
    throw err
  }
  p.teardown.add('leases', async () => { await service.stop(); await hooks.detach() })
  p.details.add('lease', (vm) => hooks.infoOf(vm))
  p.lease.current = { service, hooks }
}
