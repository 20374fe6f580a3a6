import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveAgentConfig, runAgent, silentLogger, writeClusterKey, type RunningAgent } from '@meshvirt/agent'
import { SimHypervisor } from '@meshvirt/hypervisor'
import { pollUntil } from './poll.js'

const MIB = 2 ** 20

export interface HostSize { vcpus: number, memoryMiB: number, diskMiB?: number, labels?: Record<string, string> }

export interface InProcessCluster {
  dir: string
  agents: RunningAgent[]
  stop: () => Promise<void>
}

/**
 * Real agents (real libp2p over loopback TCP, real negotiation, real SQLite) in this process,
 * each with the simulated hypervisor and a chosen size: the integration-test cluster.
 */
export async function startInProcessCluster (sizes: HostSize[], opts: { reservationTtlMs?: number, timing?: 'local' | 'lan' } = {}): Promise<InProcessCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'mv-int-'))
  const key = join(dir, 'cluster.key')
  await writeClusterKey(key)
  const agents: RunningAgent[] = []
  const stop = async (): Promise<void> => {
    await Promise.allSettled(agents.map(async (a) => { await a.stop() }))
    await rm(dir, { recursive: true, force: true })
  }
  try {
    for (const [i, size] of sizes.entries()) {
      const config = resolveAgentConfig([{
        name: 'test',
        input: {
          name: `h${i}`,
          dataDir: join(dir, `h${i}`),
          listen: ['/ip4/127.0.0.1/tcp/0'],
          bootstrap: agents[0] !== undefined ? [agents[0].addrs[0] as string] : [],
          clusterKeyFile: key,
          labels: size.labels ?? {}
        }
      }])
      agents.push(await runAgent(config, {
        log: silentLogger,
        timing: opts.timing ?? 'local',
        hypervisor: { driver: new SimHypervisor({ hostLimits: { cpus: size.vcpus, memoryMiB: size.memoryMiB } }), facts: { accelerator: 'tcg', qemuVersion: 'sim', machineTypes: [] } },
        inventory: { vcpus: size.vcpus, memoryBytes: size.memoryMiB * MIB, diskBytes: (size.diskMiB ?? 100_000) * MIB },
        ...(opts.reservationTtlMs !== undefined ? { reservationTtlMs: opts.reservationTtlMs } : {})
      }))
    }
    await pollUntil(() => agents.every((a) => a.mesh.view.hosts().filter((h) => h.liveness === 'alive').length === sizes.length), {
      timeoutMs: 20_000, what: `all ${sizes.length} agents to see each other`
    })
  } catch (err) {
    await stop()
    throw err
  }
  return { dir, agents, stop }
}

/** A minimal valid spec for the simulated hypervisor. */
export function simSpec (name: string, memoryMiB = 128, vcpus = 1): { name: string, resources: { vcpus: number, memoryBytes: number, diskBytes: number }, boot: { kernel: string } } {
  return { name, resources: { vcpus, memoryBytes: memoryMiB * MIB, diskBytes: 0 }, boot: { kernel: '/sim/vmlinux' } }
}
