import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { SimHypervisor } from '@meshvirt/hypervisor'
import { runAgent, type RunningAgent } from '../src/agent.js'
import { resolveAgentConfig } from '../src/config/agent-config.js'
import { ControlClient } from '../src/control/control-client.js'
import { silentLogger } from '../src/log/logger.js'
import { writeClusterKey } from '../src/store/cluster-key-file.js'
import { StateStore } from '../src/store/state-store.js'

const MIB = 2 ** 20

describe('an agent killed while it moved a stopped VM (cold migration)', () => {
  let dir: string
  let agent: RunningAgent | undefined
  afterEach(async () => { await agent?.stop(); agent = undefined; await rm(dir, { recursive: true, force: true }) })

  it('finds the VM stopped on restart: the paused QEMU is killed, the guest never runs', async () => {
    dir = await mkdtemp(join(tmpdir(), 'mv-cold-'))
    const key = join(dir, 'cluster.key')
    await writeClusterKey(key)
    const config = resolveAgentConfig([{ name: 'test', input: { name: 'h0', dataDir: join(dir, 'h0'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], clusterKeyFile: key } }])
    // The same driver instance across the restart: its VMs are what survives, as QEMU processes would.
    const hv = new SimHypervisor({ hostLimits: { cpus: 4, memoryMiB: 4096 } })
    const start = async (): Promise<RunningAgent> => await runAgent(config, {
      log: silentLogger,
      timing: 'local',
      hypervisor: { driver: hv, facts: { accelerator: 'tcg', qemuVersion: 'sim', machineTypes: [] } },
      inventory: { vcpus: 4, memoryBytes: 4096 * MIB, diskBytes: 8192 * MIB }
    })
    agent = await start()
    const client = new ControlClient(agent.controlSocket)
    const id = (await client.call({ idempotencyKey: 'c1', createVm: { spec: { name: 'c1', resources: { vcpus: 1, memoryBytes: 128 * MIB, diskBytes: 64 * MIB }, boot: { kernel: '/sim/vmlinux' } } } })).vm?.summary?.id as string
    await client.call({ stopVm: { vm: { id } } })
    await agent.stop()
    agent = undefined
    // As the agent left it when it died mid-move: the row `migrating`, the source QEMU started paused.
    const store = StateStore.open(config.dataDir)
    store.updateVm(id, { state: 'migrating' }, Date.now())
    store.close()
    await hv.start(id, { paused: true })

    agent = await start()
    const row = agent.vms.get(id)
    expect(row).toMatchObject({ state: 'stopped', desired: 'stopped' })
    // Killed as it was (paused), not resumed and then shut down as a running guest would be.
    expect((await hv.inspect(id)).exit?.reason).toBe('killed')
  }, 30_000)
})
