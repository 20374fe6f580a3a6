import { writeFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { createMeshNode, type MeshNode, type TimingPreset } from '@meshvirt/mesh'
import type { AgentConfig } from './config/agent-config.js'
import { ControlServer } from './control/control-server.js'
import { createControlHandler } from './control/control-handler.js'
import { advertContent } from './host/advert-content.js'
import { collectInventory, type HostInventory, type HypervisorFacts } from './host/inventory.js'
import { createLogger, type Logger } from './log/logger.js'
import { readClusterKey } from './store/cluster-key-file.js'
import { nextIncarnation, prepareDataDir } from './store/data-dir.js'
import { loadOrCreateIdentity } from './store/identity-store.js'

export const CONTROL_SOCKET = 'control.sock'
/** Written at start, removed at stop: how scripts and tests find a running agent's addresses. */
export const AGENT_INFO_FILE = 'agent.json'

export interface RunAgentOptions {
  log?: Logger
  /** Gossip and liveness timing preset: 'lan' (default), 'wan', or 'local' for tests. */
  timing?: TimingPreset
  hypervisor?: HypervisorFacts
}

export interface RunningAgent {
  hostId: string
  incarnation: number
  addrs: string[]
  controlSocket: string
  inventory: HostInventory
  mesh: MeshNode
  stop: () => Promise<void>
}

/**
 * Starts the host agent: data dir, identity, inventory, the mesh node with capacity gossip,
 * and the local control API. Resolves once it listens; `stop()` leaves cleanly.
 */
export async function runAgent (config: AgentConfig, opts: RunAgentOptions = {}): Promise<RunningAgent> {
  const root = opts.log ?? createLogger({ level: config.logLevel, component: 'meshvirt' })
  await prepareDataDir(config.dataDir)
  const { identity, created } = await loadOrCreateIdentity(config.dataDir)
  const log = root.child('agent', { host: identity.hostId })
  const defaultKey = config.clusterKeyFile === join(config.dataDir, 'cluster.key')
  const clusterKey = await readClusterKey(config.clusterKeyFile, { createIfMissing: defaultKey })
  if (clusterKey.created) log.warn('created a new cluster key: copy it to every other host of this cluster', { file: config.clusterKeyFile })
  const incarnation = await nextIncarnation(config.dataDir)
  const inventory = await collectInventory(config.dataDir, opts.hypervisor)
  if (config.name !== undefined) inventory.hostname = config.name
  log.info(created ? 'created host identity' : 'loaded host identity', { incarnation, vcpus: inventory.vcpus, memoryBytes: inventory.memoryBytes, diskBytes: inventory.diskBytes, accelerator: inventory.accelerator })

  const preset = opts.timing ?? timingFromEnv()
  const mesh = await createMeshNode({
    privateKey: identity.privateKey,
    listen: config.listen,
    bootstrap: config.bootstrap,
    clusterKey: clusterKey.key,
    clusterName: config.cluster,
    incarnation,
    timing: preset === undefined ? { heartbeatIntervalMs: config.heartbeatMs } : preset,
    advert: advertContent(inventory, config)
  })
  mesh.view.subscribe((e) => {
    if (e.type === 'updated' || e.host.self) return
    log.info(`host ${e.type}`, { peer: e.host.hostId, hostname: e.host.advert.hostname })
  })

  const controlSocket = join(config.dataDir, CONTROL_SOCKET)
  const control = new ControlServer(controlSocket, createControlHandler({ selfId: identity.hostId, view: mesh.view }), root.child('control', { host: identity.hostId }))
  try {
    await control.start()
  } catch (err) {
    await mesh.stop()
    throw err
  }
  const addrs = mesh.multiaddrs()
  const infoFile = join(config.dataDir, AGENT_INFO_FILE)
  await writeFile(infoFile, JSON.stringify({ hostId: identity.hostId, pid: process.pid, incarnation, addrs, controlSocket }, null, 2) + '\n')
  log.info('agent ready', { addrs, controlSocket })

  let stopping: Promise<void> | undefined
  return {
    hostId: identity.hostId,
    incarnation,
    addrs,
    controlSocket,
    inventory,
    mesh,
    stop: async () => {
      stopping ??= (async () => {
        await control.stop()
        await mesh.stop()
        await rm(infoFile, { force: true })
        log.info('agent stopped')
      })()
      await stopping
    }
  }
}

function timingFromEnv (): TimingPreset | undefined {
  const t = process.env.MESHVIRT_TIMING
  return t === 'lan' || t === 'wan' || t === 'local' ? t : undefined
}
