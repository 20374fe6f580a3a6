import { ControlError } from '../control/errors.js'
import type { VmRow } from '../store/state-store.js'

/**
 * Why this VM may not live-migrate, or undefined when it may. A `--not-migratable` VM runs with
 * the host's own CPU (KVM `-cpu host`): its guest may use any feature of this CPU, and a
 * destination with another CPU (or TCG) would break it mid-run, so it stays where it is.
 */
export function notMigratableReason (vm: Pick<VmRow, 'spec'>): string | undefined {
  if (vm.spec.notMigratable) return 'it was created --not-migratable (it runs with this host\'s own CPU and stays on it)'
  return undefined
}

/** For `vm migrate`: refuses with NOT_MIGRATABLE and what the operator can do instead. */
export function assertMigratable (vm: Pick<VmRow, 'spec' | 'name' | 'id'>): void {
  const why = notMigratableReason(vm)
  if (why !== undefined) {
    throw new ControlError('NOT_MIGRATABLE', `VM ${vm.name} cannot be migrated: ${why}; stop it and create it again elsewhere if it must move`, { vmId: vm.id })
  }
}
