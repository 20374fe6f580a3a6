import { offersLiveMigration } from '@meshvirt/hypervisor'
import { TunnelExits } from '@meshvirt/mesh'
import { MigrationDestination } from '../migrate/migration-destination.js'
import { MigrationSource } from '../migrate/migration-source.js'
import { MigrationStates } from '../migrate/migration-states.js'
import type { HostParts } from './host-parts.js'

export interface MigrationPart {
  /** The destination side, answered through the negotiate protocol. */
  incoming: MigrationDestination
  /** The source side: `vm migrate`, `host drain`. */
  source: MigrationSource
}

/**
 * Live migration, when the driver offers it: tunnel exits for incoming guests (through the mesh),
 * the destination and the source halves. Undefined when the driver cannot migrate.
 */
export async function startMigration (p: HostParts): Promise<MigrationPart | undefined> {
  const hv = p.hypervisor
  if (!offersLiveMigration(hv)) return undefined
  const { selfId, node, records, lease } = p
  const exits = new TunnelExits(node.libp2p)
  await exits.start()
  p.teardown.add('tunnel exits', async () => { await exits.stop() })
  const log = p.root.child('migrate', { host: selfId })
  const states = new MigrationStates({
    selfId,
    store: p.store,
    ledger: p.ledger,
    log,
    onChange: () => { p.events.emit('vm:changed', {}) },
    onGuestExited: (vm, reason) => { p.events.emit('guest:exited', { vm, reason }) }
  })
  const incoming = new MigrationDestination({
    vms: p.vms, states, hypervisor: hv, preparation: p.preparation, exits, log, listenAddrs: () => node.multiaddrs(),
    arrivedReplicated: (vmId, holders, leaseRemainingMs) => {
      for (const h of holders) if (h !== selfId) records.addHolder(vmId, h, Date.now())
      lease.current?.hooks.inheritLease(vmId, leaseRemainingMs)
    }
  })
  const source = new MigrationSource({
    selfId, dataDir: p.config.dataDir, view: node.view, mesh: node, peers: p.peers, states, hypervisor: hv, preparation: p.preparation, log,
    holdersOf: (vmId) => records.holders(vmId).map((h) => h.holder),
    leaseRemainingMs: (vmId) => { const f = lease.current?.service.state(vmId)?.fenceAt; return f === undefined ? undefined : f - Date.now() },
    handOver: (vmId, to) => { lease.current?.service.handOver(vmId, to) }
  })
  p.details.add('migration', (vm) => ({ migration: source.progressOf(vm.id) ?? null }))
  return { incoming, source }
}
