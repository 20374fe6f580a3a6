/** The lease protocol's stream protocol (docs/design.md, "The wire"). */
export const LEASE_PROTOCOL = '/meshvirt/lease/1.0.0'
/** How often the service runs the lease table: a fence is at most this late (part of maxFenceMs). */
export const LEASE_TICK_MS = 50
