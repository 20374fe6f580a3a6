import type { NameClaims } from '../negotiate/name-authority.js'
import { NegotiateService, type Accepting } from '../negotiate/negotiate-service.js'
import { PEER_PROTOCOLS } from '../negotiate/protocols.js'
import { driverCanStart } from '../negotiate/reserve-admission.js'
import type { MigrationPart } from './migration-part.js'
import type { ReplicationPart } from './replication-part.js'
import type { HostParts } from './host-parts.js'

/** Longest a peer's negotiate request may run here (PrepareIncoming starts a QEMU). */
export const NEGOTIATE_HANDLER_TIMEOUT_MS = 2 * 60_000

/**
 * The host side of placement and of what hosts ask each other: reservations and commits, name
 * claims, and — when those parts run — incoming migrations and replicas, each on its own protocol. Served once every part
 * it answers for is up, the lease included (an arriving replicated VM inherits its lease).
 */
export interface NegotiationOptions {
  accepting: () => Accepting
  /** This host's name authority: the one instance whose `inUse` guard knows the features' keys (addresses). */
  names: NameClaims
  migration?: MigrationPart
  replicas?: ReplicationPart
}

export async function serveNegotiation (p: HostParts, opts: NegotiationOptions): Promise<void> {
  const { selfId, root, node, peers } = p
  const negotiate = new NegotiateService({
    ledger: p.ledger,
    vms: p.vms,
    names: opts.names,
    log: root.child('negotiate', { host: selfId }),
    canStart: driverCanStart(p.hypervisor),
    accepting: opts.accepting,
    ...(opts.migration !== undefined ? { incoming: opts.migration.incoming } : {}),
    ...(opts.replicas !== undefined ? { replicas: opts.replicas.keeper } : {})
  })
  // One protocol per concern (placement, names, migration control, replica groups), one service.
  for (const protocol of PEER_PROTOCOLS) {
    peers.registerLocal(protocol, async (b, peer) => await negotiate.handle(b, peer, protocol))
    await node.handle(protocol, async (b, peer) => await negotiate.handle(b, peer, protocol), { timeoutMs: NEGOTIATE_HANDLER_TIMEOUT_MS })
  }
}
