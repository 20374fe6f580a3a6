import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SimHypervisor, type Accelerator } from '@meshvirt/hypervisor'
import type { TimingPreset } from '@meshvirt/mesh'
import { SimHostNetwork } from '@meshvirt/network'
import { resolveAgentConfig, runAgent, silentLogger, writeClusterKey, type AgentConfigInput, type BalanceKnobs, type RunningAgent, type VmResource } from '@meshvirt/agent'

const MIB = 2 ** 20

export interface SimHostSize { vcpus: number, memoryMiB: number, diskMiB?: number, labels?: Record<string, string>, /** What the host advertises (default tcg). */ accel?: Accelerator }

export interface SimCluster {
  dir: string
  agents: RunningAgent[]
  /**
   * Start agent `index` again on its data dir and port (after `agents[index].stop()`), with a fresh
   * simulated hypervisor (its guests died with it): an old owner coming back.
   */
  restart: (index: number, hypervisor?: SimHypervisor) => Promise<RunningAgent>
  /** Each agent's simulated host network (what it built for its VMs' NICs), by index. */
  networks: SimHostNetwork[]
  stop: () => Promise<void>
}

export interface SimClusterOptions {
  reservationTtlMs?: number
  timing?: TimingPreset
  readyTimeoutMs?: number
  /** Per-VM resources of host `index` (beyond its disks), as a feature part would register them. */
  vmResources?: (index: number) => VmResource[]
  /** The agents' image dirs (where `image import` may read files). */
  imageDirs?: string[]
  /** More agent settings for host `index` (image copies, bandwidths …). */
  config?: (index: number) => Partial<AgentConfigInput>
  /** Balancing knobs of every agent (tests shorten the timings). */
  balance?: Partial<BalanceKnobs>
}

/**
 * N real agents in this process — real libp2p over loopback TCP, real negotiation, real SQLite
 * ledgers — each with the SIMULATED hypervisor and a chosen size. For integration tests and
 * control-plane benchmarks only: no guest runs.
 */
export async function startSimCluster (sizes: SimHostSize[], opts: SimClusterOptions = {}): Promise<SimCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'mv-sim-'))
  const key = join(dir, 'cluster.key')
  await writeClusterKey(key)
  const agents: RunningAgent[] = []
  const networks: SimHostNetwork[] = []
  const start = async (i: number, size: SimHostSize, listen: string, bootstrap: string[], hypervisor?: SimHypervisor): Promise<RunningAgent> => {
    const config = resolveAgentConfig([{
      name: 'sim-cluster',
      input: { name: `h${i}`, dataDir: join(dir, `h${i}`), listen: [listen], bootstrap, clusterKeyFile: key, labels: size.labels ?? {}, ...(opts.imageDirs !== undefined ? { imageDirs: opts.imageDirs } : {}), ...opts.config?.(i) }
    }])
    const hostNetwork = networks[i] = new SimHostNetwork()
    return await runAgent(config, {
      log: silentLogger,
      timing: opts.timing ?? 'local',
      hypervisor: { driver: hypervisor ?? new SimHypervisor({ hostLimits: { cpus: size.vcpus, memoryMiB: size.memoryMiB } }), facts: { accelerator: size.accel ?? 'tcg', qemuVersion: 'sim', machineTypes: [] } },
      inventory: { vcpus: size.vcpus, memoryBytes: size.memoryMiB * MIB, diskBytes: (size.diskMiB ?? 100_000) * MIB },
      hostNetwork,
      ...(opts.reservationTtlMs !== undefined ? { reservationTtlMs: opts.reservationTtlMs } : {}),
      ...(opts.vmResources !== undefined ? { vmResources: opts.vmResources(i) } : {}),
      ...(opts.balance !== undefined ? { balance: opts.balance } : {})
    })
  }
  const restart = async (index: number, hypervisor?: SimHypervisor): Promise<RunningAgent> => {
    const old = agents[index]
    if (old === undefined) throw new Error(`no agent ${index}`)
    const listen = (old.addrs[0] as string).replace(/\/p2p\/.*$/, '')
    const others = agents.filter((a) => a !== old).map((a) => a.addrs[0] as string)
    const again = await start(index, sizes[index] as SimHostSize, listen, others, hypervisor)
    agents[index] = again
    return again
  }
  const stop = async (): Promise<void> => {
    await Promise.allSettled(agents.map(async (a) => { await a.stop() }))
    await rm(dir, { recursive: true, force: true })
  }
  try {
    for (const [i, size] of sizes.entries()) {
      // A few doors in, not one: a star through host 0 is the one topology gossip handles worst.
      agents.push(await start(i, size, '/ip4/127.0.0.1/tcp/0', agents.slice(-3).map((a) => a.addrs[0] as string)))
    }
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000)
    while (!agents.every((a) => a.mesh.view.hosts().filter((h) => h.liveness === 'alive').length === sizes.length)) {
      if (Date.now() > deadline) throw new Error(`sim cluster: not every agent saw all ${sizes.length} hosts within ${opts.readyTimeoutMs ?? 30_000} ms`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  } catch (err) {
    await stop()
    throw err
  }
  return { dir, agents, restart, networks, stop }
}

/** A minimal valid spec for the simulated hypervisor. */
export function simVmSpec (name: string, memoryMiB = 128, vcpus = 1): { name: string, resources: { vcpus: number, memoryBytes: number, diskBytes: number }, boot: { kernel: string } } {
  return { name, resources: { vcpus, memoryBytes: memoryMiB * MIB, diskBytes: 0 }, boot: { kernel: '/sim/vmlinux' } }
}
