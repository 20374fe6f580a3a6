import type { Hypervisor, ReplicationCapable } from '@meshvirt/hypervisor'

/** Drivers offer disk replication as a separate interface (`hv.replication`); this says whether this one does. */
export function canReplicate (hv: Hypervisor): hv is Hypervisor & ReplicationCapable {
  const r = (hv as Partial<ReplicationCapable>).replication
  return r !== undefined && typeof r.takePoint === 'function' && typeof r.openPoint === 'function'
}
