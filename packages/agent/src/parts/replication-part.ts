import { join } from 'node:path'
import { offersReplication, REPLICA_STORE_DIR } from '@meshvirt/hypervisor'
import { ReplicaHolderService } from '../replica/replica-holder-service.js'
import { ReplicaKeeper } from '../replication/replica-keeper.js'
import { ReplicationManager } from '../replication/replication-manager.js'
import type { HostParts } from './host-parts.js'

/** How often a holder looks for replicas nobody owns any more. */
const ORPHAN_SWEEP_MS = 10_000

export interface ReplicationPart {
  /** The holder side: replicas kept here, their positions, promotion. */
  keeper: ReplicaKeeper
  /** The owner side: each replicated VM's loop (holders, points, the RPO). */
  replication: ReplicationManager
}

/**
 * Replication, when the driver offers it: the holder side (points arrive on /meshvirt/replica/1.0.0)
 * and the owner side, and the sweep of orphaned replicas. Undefined when the driver cannot replicate.
 */
export async function startReplication (p: HostParts): Promise<ReplicationPart | undefined> {
  const hv = p.hypervisor
  if (!offersReplication(hv)) return undefined
  const { selfId, node, lease } = p
  const log = p.root.child('replica', { host: selfId })
  let gate: ReplicaKeeper | undefined
  const holderService = new ReplicaHolderService(node.libp2p, {
    root: join(p.config.dataDir, REPLICA_STORE_DIR),
    accept: (vmId, peer) => gate?.accept(vmId, peer) ?? false,
    onApplied: (e) => { gate?.noteApplied(e.vmId, e.position) },
    ...(p.replicaBases !== undefined ? { bases: p.replicaBases } : {}),
    log: (message, fields) => { log.debug(message, fields) }
  })
  const keeper = gate = new ReplicaKeeper({
    selfId, store: p.store, records: p.records, ledger: p.ledger, vms: p.vms, hypervisor: hv, preparation: p.preparation, view: node.view, log,
    onChange: () => { p.events.emit('vm:changed', {}) },
    // The lease starts after the keeper; until then (and without one) no lease decides.
    leaseDecides: (vmId) => lease.current?.service.state(vmId) !== undefined
  }, holderService)
  await keeper.loadPositions()
  await holderService.start()
  p.teardown.add('replica holder', async () => { await holderService.stop() })
  const replication = new ReplicationManager({
    selfId, records: p.records, vms: p.vms, keeper, replication: hv.replication, libp2p: node.libp2p, view: node.view, peers: p.peers, log, bandwidthBytesPerSec: p.config.replicaBandwidth,
    onNewerOwner: (vmId, epoch, owner) => { if (owner !== '') lease.current?.service.observe(vmId, epoch, owner) }
  })
  p.details.add('replication', (vm) => replication.statusOf(vm))
  replication.start()
  p.teardown.add('replication', async () => { await replication.stop() })
  const sweep = setInterval(() => { void keeper.sweepOrphans().catch((err: unknown) => { log.warn('orphan sweep failed', { err: (err as Error).message }) }) }, ORPHAN_SWEEP_MS)
  sweep.unref()
  p.teardown.add('orphan sweep', () => { clearInterval(sweep) })
  return { keeper, replication }
}
