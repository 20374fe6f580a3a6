import { join } from 'node:path'
import type { Hypervisor } from '@meshvirt/hypervisor'
import type { AgentConfig } from '../config/agent-config.js'
import type { Logger } from '../log/logger.js'
import { readClusterKey } from '../store/cluster-key-file.js'
import { nextIncarnation, prepareDataDir } from '../store/data-dir.js'
import { loadOrCreateIdentity } from '../store/identity-store.js'
import { StateStore } from '../store/state-store.js'
import type { Teardown } from '../util/teardown.js'
import { bytesOnDisk, VM_FILE_DIRS, vmDiskTotal } from './disk-total.js'
import { setUpHypervisor } from './hypervisor-setup.js'
import { collectInventory, type HostInventory, type HypervisorFacts } from './inventory.js'

/** What this host is before any part starts: who, with which key and driver, how big, and its state. */
export interface BootedHost {
  identity: Awaited<ReturnType<typeof loadOrCreateIdentity>>['identity']
  /** The identity was made just now (a new host, not a restart). */
  created: boolean
  clusterKey: Uint8Array
  incarnation: number
  hv: { driver: Hypervisor, facts: HypervisorFacts }
  inventory: HostInventory
  store: StateStore
  /** The agent's logger, under this host's id. */
  log: Logger
}

/**
 * The data dir, identity, cluster key and incarnation; the hypervisor (the one given, or probed);
 * the inventory (measured, then the given overrides); the state store. Each stop goes to `teardown`.
 */
export async function bootHost (config: AgentConfig, given: { hypervisor?: BootedHost['hv'], inventory?: Partial<HostInventory> }, teardown: Teardown, root: Logger): Promise<BootedHost> {
  await prepareDataDir(config.dataDir)
  const { identity, created } = await loadOrCreateIdentity(config.dataDir)
  const log = root.child('agent', { host: identity.hostId })
  const defaultKey = config.clusterKeyFile === join(config.dataDir, 'cluster.key')
  const clusterKey = await readClusterKey(config.clusterKeyFile, { createIfMissing: defaultKey })
  if (clusterKey.created) log.warn('created a new cluster key: copy it to every other host of this cluster', { file: config.clusterKeyFile })
  const incarnation = await nextIncarnation(config.dataDir)

  let hv = given.hypervisor
  if (hv === undefined) {
    const setUp = await setUpHypervisor(config, log)
    hv = { driver: setUp.hypervisor, facts: setUp.facts }
  }
  const driver = hv.driver
  teardown.add('hypervisor', async () => { await driver.close() })
  const inventory = { ...await collectInventory(config.dataDir, hv.facts), ...given.inventory }
  if (config.name !== undefined) inventory.hostname = config.name
  log.info(created ? 'created host identity' : 'loaded host identity', { incarnation, vcpus: inventory.vcpus, memoryBytes: inventory.memoryBytes, diskBytes: inventory.diskBytes, accelerator: inventory.accelerator })

  const store = StateStore.open(config.dataDir)
  teardown.add('state store', () => { store.close() })
  // Measured free space is net of this host's own VM disks: count those back (disk-total.ts).
  if (given.inventory?.diskBytes === undefined) inventory.diskBytes = vmDiskTotal(inventory.diskBytes, await bytesOnDisk(VM_FILE_DIRS.map((d) => join(config.dataDir, d))), store.allocated().diskBytes)
  return { identity, created, clusterKey: clusterKey.key, incarnation, hv, inventory, store, log }
}
