/** The lease protocol's stream protocol (docs/design.md, "The wire"). */
export const LEASE_PROTOCOL = '/meshvirt/lease/1.0.0'
/** How often the service runs the lease table: a fence is at most this late (part of maxFenceMs). */
export const LEASE_TICK_MS = 50
/**
 * The tick of a host that takes part in no lease: it only looks for a newly replicated VM of its
 * own (a lease request from a peer wakes it at once). An idle agent woke 20 times a second for it.
 */
export const LEASE_IDLE_TICK_MS = 1000
