import type { HostFilter } from '../host-filter.js'

/**
 * A KVM guest needs a KVM host (and KVM ↔ TCG migration fails, DESIGN.md). A TCG guest runs on any
 * host, since TCG needs no hardware support.
 */
export const acceleratorFilter: HostFilter = (request) => {
  if (request.accelerator !== 'kvm') return undefined
  return (host) => host.accelerator === 'kvm'
    ? undefined
    : { hostId: host.id, filter: 'ACCELERATOR', reason: `host runs ${host.accelerator} only, VM needs kvm` }
}
