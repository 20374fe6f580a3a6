import { join } from 'node:path'
import { LinuxHostNetwork, SimHostNetwork, type HostNetwork } from '@meshvirt/network'
import type { AgentConfig } from '../config/agent-config.js'

/** Where the network driver keeps its files (dnsmasq's hosts files and pid files). */
export const NETWORK_DIR = 'network'

/**
 * The host's network driver: Linux (bridges, VXLAN, taps, dnsmasq, nftables — needs root; nothing
 * is created until a VM with a NIC arrives), or the in-memory one of control-plane tests.
 */
export function setUpHostNetwork (config: Pick<AgentConfig, 'network' | 'dataDir'>, underlay: string): HostNetwork {
  if (config.network === 'sim') return new SimHostNetwork()
  return new LinuxHostNetwork({ underlay, stateDir: join(config.dataDir, NETWORK_DIR) })
}
