import type { Hypervisor, LiveMigration } from '@meshvirt/hypervisor'

/** Drivers offer live migration as a separate interface; this says whether this one does. */
export function canMigrate (hv: Hypervisor): hv is Hypervisor & LiveMigration {
  const m = hv as Partial<LiveMigration>
  return typeof m.prepareIncoming === 'function' && typeof m.migrateOut === 'function' &&
    typeof m.completeIncoming === 'function' && typeof m.abortIncoming === 'function' &&
    typeof m.completeOutgoing === 'function' && typeof m.resumeOutgoing === 'function'
}
