/**
 * Per-VM ownership leases and automatic failover (`/meshvirt/lease/1.0.0`, issue #9): the pure
 * protocol (LeaseTable with OwnerLease and MemberLease; lease-table.ts explains why it is safe),
 * its timing (lease-timing.ts), the codec, and LeaseService, which runs it over the mesh and calls
 * the agent's hooks.
 *
 * ```ts
 * const leases = new LeaseService({ mesh }, { hooks, timing: config.lease, restarted: !firstStart, log })
 * await leases.start()
 * leases.state(vmId)            // for `vm show`: role, epoch, owner, members, lease instants
 * leases.observe(vmId, epoch, owner)   // gossip saw a newer owner: an older one here steps down
 * await leases.stop()
 * ```
 */
export * from './constants.js'
export * from './errors.js'
export type * from './types.js'
export { DEFAULT_LEASE_TIMING, LOCAL_LEASE_TIMING, leaseTiming, majority, memberInstants, ownerInstants, type LeaseTiming, type LeaseTimingConfig } from './lease-timing.js'
export { LeaseTable, type LeaseTableInit, type OwnedGroup } from './lease-table.js'
export { OwnerLease, type OwnedGuest } from './owner-lease.js'
export { MemberLease, outranks } from './member-lease.js'
export { decodeLeaseRequest, decodeLeaseResponse, encodeLeaseError, encodeLeaseRequest, encodeLeaseResponse, MAX_GROUP_MEMBERS, MAX_LEASE_BATCH, MAX_LEASE_MS } from './lease-codec.js'
export { LeaseService, type LeaseHooks, type LeaseServiceComponents, type LeaseServiceInit } from './lease-service.js'
