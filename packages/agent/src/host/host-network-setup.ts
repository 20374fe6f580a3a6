import { createHash } from 'node:crypto'
import { join, resolve } from 'node:path'
import { LinuxHostNetwork, SimHostNetwork, type HostNetwork } from '@meshvirt/network'
import type { AgentConfig } from '../config/agent-config.js'

/** Where network state lives: dnsmasq re-reads its files as `nobody`, so not under the 0700 data dir. */
export const NETWORK_RUN_DIR = '/run/meshvirt'

/**
 * The driver's directory for this agent: one per data dir (several agents may share a machine in
 * tests), under /run — a reboot clears it, as it clears the bridges and taps it describes.
 */
export function networkStateDir (dataDir: string, runDir = NETWORK_RUN_DIR): string {
  return join(runDir, createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 12), 'network')
}

/**
 * The host's network driver: Linux (bridges, VXLAN, taps, dnsmasq, nftables — needs root; nothing
 * is created until a VM with a NIC arrives), or the in-memory one of control-plane tests.
 */
export function setUpHostNetwork (config: Pick<AgentConfig, 'network' | 'dataDir'>, underlay: string, log: (message: string) => void): HostNetwork {
  if (config.network === 'sim') return new SimHostNetwork()
  return new LinuxHostNetwork({ underlay, stateDir: networkStateDir(config.dataDir), log })
}
