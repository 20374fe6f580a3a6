import type { AgentConfigInput } from './agent-config.js'

const list = (v: string | undefined): string[] | undefined =>
  v === undefined || v.trim() === '' ? undefined : v.split(',').map((s) => s.trim()).filter((s) => s !== '')

/**
 * The environment variables the agent reads (MESHVIRT_*), as a config source. Lists are
 * comma-separated: MESHVIRT_BOOTSTRAP=/ip4/…/p2p/A,/ip4/…/p2p/B, MESHVIRT_LABELS=zone=a,rack=r1.
 */
export function configFromEnv (env: Record<string, string | undefined>): AgentConfigInput {
  return {
    name: env.MESHVIRT_NAME,
    dataDir: env.MESHVIRT_DATA_DIR,
    listen: list(env.MESHVIRT_LISTEN),
    bootstrap: list(env.MESHVIRT_BOOTSTRAP),
    labels: list(env.MESHVIRT_LABELS),
    cluster: env.MESHVIRT_CLUSTER,
    clusterKeyFile: env.MESHVIRT_CLUSTER_KEY,
    heartbeatMs: env.MESHVIRT_HEARTBEAT_MS,
    logLevel: env.MESHVIRT_LOG_LEVEL,
    hypervisor: env.MESHVIRT_HYPERVISOR,
    accel: env.MESHVIRT_ACCEL,
    imageDirs: list(env.MESHVIRT_IMAGE_DIRS),
    probeKernel: env.MESHVIRT_PROBE_KERNEL,
    probeInitrd: env.MESHVIRT_PROBE_INITRD,
    monitorListen: env.MESHVIRT_MONITOR_LISTEN,
    apiListen: env.MESHVIRT_API_LISTEN,
    replicaBandwidth: env.MESHVIRT_REPLICA_BANDWIDTH,
    imageBandwidth: env.MESHVIRT_IMAGE_BANDWIDTH,
    imageCopies: env.MESHVIRT_IMAGE_COPIES,
    imageCache: env.MESHVIRT_IMAGE_CACHE,
    underlayAddress: env.MESHVIRT_UNDERLAY_ADDRESS,
    network: env.MESHVIRT_NETWORK
  }
}

export const ENV_VARS = ['MESHVIRT_CONFIG', 'MESHVIRT_NAME', 'MESHVIRT_DATA_DIR', 'MESHVIRT_LISTEN', 'MESHVIRT_BOOTSTRAP', 'MESHVIRT_LABELS',
  'MESHVIRT_CLUSTER', 'MESHVIRT_CLUSTER_KEY', 'MESHVIRT_HEARTBEAT_MS', 'MESHVIRT_LOG_LEVEL',
  'MESHVIRT_HYPERVISOR', 'MESHVIRT_ACCEL', 'MESHVIRT_IMAGE_DIRS', 'MESHVIRT_PROBE_KERNEL', 'MESHVIRT_PROBE_INITRD', 'MESHVIRT_MONITOR_LISTEN', 'MESHVIRT_UNDERLAY_ADDRESS', 'MESHVIRT_NETWORK'] as const
