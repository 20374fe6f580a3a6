import type { ReplicationCapable } from './backup/types.js'
import type { LiveMigration } from './migration/types.js'
import type { Hypervisor } from './types.js'

/** The driver declares live migration (`capabilities.liveMigration`). */
export function offersLiveMigration (hv: Hypervisor): hv is Hypervisor & LiveMigration {
  return hv.capabilities.liveMigration
}

/** The driver declares disk replication (`capabilities.diskReplication`). */
export function offersReplication (hv: Hypervisor): hv is Hypervisor & ReplicationCapable {
  return hv.capabilities.diskReplication
}
