import type { HostAdvertContent } from '@meshvirt/mesh'
import type { AgentConfig } from '../config/agent-config.js'
import { NO_RESOURCES, type Resources } from '../resources.js'
import type { HostInventory } from './inventory.js'

export const AGENT_VERSION = '0.1.0'

/** What the host has handed out right now (the ledger's totals). */
export interface LedgerTotals {
  allocated: Resources
  reservations: Resources
}

/** The advert content of this host: pure, from its inventory, its config and its ledger. */
export function advertContent (inv: HostInventory, config: Pick<AgentConfig, 'labels' | 'hostReserved' | 'overcommit'>, ledger: LedgerTotals = { allocated: NO_RESOURCES, reservations: NO_RESOURCES }, state: HostAdvertContent['state'] = 'active'): Partial<HostAdvertContent> {
  return {
    hostname: inv.hostname,
    labels: { ...config.labels },
    capacity: {
      total: { vcpus: inv.vcpus, memoryBytes: inv.memoryBytes, diskBytes: inv.diskBytes },
      hostReserved: { ...config.hostReserved },
      allocated: { ...ledger.allocated },
      reservations: { ...ledger.reservations },
      overcommit: { ...config.overcommit }
    },
    accelerator: inv.accelerator === 'none' ? 'unspecified' : inv.accelerator,
    cpuModel: inv.cpuModel,
    cpuFlags: inv.cpuFlags,
    cpuFlagsFingerprint: inv.cpuFlagsFingerprint,
    qemuVersion: inv.qemuVersion,
    machineTypes: inv.machineTypes,
    state,
    agentVersion: AGENT_VERSION
  }
}
