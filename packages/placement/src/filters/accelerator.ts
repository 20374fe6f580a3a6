import type { HostFilter } from '../host-filter.js'

/**
 * Never across accelerators. QEMU cannot migrate a guest between KVM and TCG (docs/design.md; before
 * this filter it failed only at the RAM size check, late in the migration), so a live migration
 * goes only to a host of the accelerator the guest runs under now (`liveOn`), and a VM whose spec
 * fixes its accelerator is placed only on a host of that accelerator. A VM that fixes none may
 * start anywhere.
 */
export const acceleratorFilter: HostFilter = (request) => {
  const wanted = request.liveOn ?? request.accelerator
  if (wanted === undefined) return undefined
  const why = request.liveOn !== undefined
    ? `the VM runs under ${wanted} and QEMU cannot migrate a guest across accelerators`
    : `the VM needs ${wanted}`
  return (host) => host.accelerator === wanted
    ? undefined
    : { hostId: host.id, filter: 'ACCELERATOR', detail: wanted, reason: `host runs ${host.accelerator}, ${why}` }
}
