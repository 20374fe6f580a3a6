import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SimHypervisor } from '@meshvirt/hypervisor'
import { pb } from '@meshvirt/proto'
import { runAgent, type RunningAgent } from '../src/agent.js'
import { resolveAgentConfig } from '../src/config/agent-config.js'
import { parseControlRequest } from '../src/control/control-action.js'
import { ControlClient } from '../src/control/control-client.js'
import { silentLogger } from '../src/log/logger.js'
import { writeClusterKey } from '../src/store/cluster-key-file.js'
import { decideResize } from '../src/vm/vm-resize.js'
import { vmSpecFromWire } from '../src/vm/vm-spec-codec.js'

const MIB = 2 ** 20
const GIB = 2 ** 30

async function code (p: Promise<unknown>): Promise<string | undefined> {
  try { await p; return undefined } catch (err) { return (err as { code?: string }).code }
}

describe('decideResize: what a resize does on the owner, pure', () => {
  const vm = (state: 'running' | 'stopped', diskBytes = 10 * GIB) => ({ name: 'web-1', state, resources: { vcpus: 2, memoryBytes: GIB, diskBytes } })
  const spec = vmSpecFromWire({ name: 'web-1', resources: { vcpus: 2, memoryBytes: GIB, diskBytes: 10 * GIB } })

  it('a stopped VM: any vCPUs and memory, with no restart', () => {
    const d = decideResize(vm('stopped'), spec, { vcpus: 4, memoryBytes: 512 * MIB, diskBytes: 0 }, false)
    expect(d).toMatchObject({ do: 'resize', restart: false, next: { vcpus: 4, memoryBytes: 512 * MIB, diskBytes: 10 * GIB }, driver: { vcpus: 4, memoryMiB: 512 } })
    if (d.do === 'resize') expect(d.spec.resources).toEqual({ vcpus: 4, memoryBytes: 512 * MIB, diskBytes: 10 * GIB })
  })

  it('a running VM: disk and memory grow online; vCPUs, less memory or new room need --restart', () => {
    expect(decideResize(vm('running'), spec, { vcpus: 0, memoryBytes: 0, diskBytes: 20 * GIB }, false)).toMatchObject({ do: 'resize', restart: false, driver: { disks: { vda: 20 * 1024 } } })
    expect(decideResize(vm('running'), spec, { vcpus: 0, memoryBytes: 2 * GIB, diskBytes: 0 }, false)).toMatchObject({ do: 'resize', restart: false, driver: { memoryMiB: 2048 } })
    expect(() => decideResize(vm('running'), spec, { vcpus: 4, memoryBytes: 0, diskBytes: 0 }, false)).toThrow(/its vCPUs grow \(online only within --max-vcpus, set while it is stopped\) only across a restart; add --restart/)
    expect(() => decideResize(vm('running'), spec, { vcpus: 0, memoryBytes: 512 * MIB, diskBytes: 0 }, false)).toThrow(/its memory shrinks only across a restart/)
    expect(() => decideResize(vm('running'), spec, { vcpus: 0, memoryBytes: 0, diskBytes: 0, maxMemoryBytes: 8 * GIB }, false)).toThrow(/its room to grow \(--max-memory\) changes only across a restart/)
    // --restart: the change is made across a restart, even one that could be made online.
    expect(decideResize(vm('running'), spec, { vcpus: 0, memoryBytes: 2 * GIB, diskBytes: 0 }, true)).toMatchObject({ do: 'resize', restart: true, driver: { memoryMiB: 2048 } })
  })

  it('vCPUs: online within the room, never fewer online; the room kept, set, never below the vCPUs', () => {
    const roomy = { ...spec, maxVcpus: 4 }
    expect(decideResize(vm('running'), roomy, { vcpus: 4, memoryBytes: 0, diskBytes: 0 }, false)).toMatchObject({ do: 'resize', restart: false, driver: { vcpus: 4 }, spec: { maxVcpus: 4 } })
    expect(() => decideResize(vm('running'), roomy, { vcpus: 6, memoryBytes: 0, diskBytes: 0 }, false)).toThrow('VM web-1 has room for 4 vCPUs (its --max-vcpus): 6 needs --max-vcpus too')
    const four = { ...vm('running'), resources: { ...vm('running').resources, vcpus: 4 } }
    expect(() => decideResize(four, roomy, { vcpus: 2, memoryBytes: 0, diskBytes: 0 }, false)).toThrow(/its vCPUs shrink only across a restart/)
    expect(() => decideResize(vm('running'), spec, { vcpus: 0, memoryBytes: 0, diskBytes: 0, maxVcpus: 8 }, false)).toThrow(/its room for vCPUs \(--max-vcpus\) changes only across a restart/)
    expect(decideResize(vm('stopped'), spec, { vcpus: 0, memoryBytes: 0, diskBytes: 0, maxVcpus: 8 }, false)).toMatchObject({ spec: { maxVcpus: 8 }, driver: { maxVcpus: 8 } })
  })

  it('the room to grow: kept, set, and never below the memory', () => {
    const roomy = { ...spec, maxMemoryBytes: 4 * GIB }
    expect(decideResize(vm('stopped'), roomy, { vcpus: 0, memoryBytes: 2 * GIB, diskBytes: 0 }, false)).toMatchObject({ spec: { maxMemoryBytes: 4 * GIB }, driver: { memoryMiB: 2048 } })
    expect(decideResize(vm('stopped'), spec, { vcpus: 0, memoryBytes: 0, diskBytes: 0, maxMemoryBytes: 8 * GIB }, false)).toMatchObject({ spec: { maxMemoryBytes: 8 * GIB }, driver: { maxMemoryMiB: 8192 } })
    expect(() => decideResize(vm('stopped'), roomy, { vcpus: 0, memoryBytes: 6 * GIB, diskBytes: 0 }, false)).toThrow('VM web-1 may grow to 4 GiB (its --max-memory): 6 GiB needs --max-memory too')
  })

  it('a disk never shrinks, a VM without one has none to grow, the same size is nothing to do', () => {
    expect(() => decideResize(vm('stopped'), spec, { vcpus: 0, memoryBytes: 0, diskBytes: 5 * GIB }, false)).toThrow('a disk only grows: VM web-1 has 10 GiB, asked 5 GiB')
    expect(() => decideResize(vm('stopped', 0), spec, { vcpus: 0, memoryBytes: 0, diskBytes: GIB }, false)).toThrow(/has no disk to grow/)
    expect(decideResize(vm('running'), spec, { vcpus: 2, memoryBytes: GIB, diskBytes: 10 * GIB }, false)).toEqual({ do: 'nothing' })
  })
})

describe('vm resize on the wire: parsed once, sizes checked as vm create checks them', () => {
  const parse = (r: Record<string, unknown>) => parseControlRequest(pb.ControlRequest.fromObject({ resizeVm: { vm: { name: 'web-1' }, ...r } }))
  it.each([
    [{}, /say what to resize/],
    [{ vcpus: 1000 }, /vcpus must be between 1 and 256/],
    [{ memoryBytes: 8 * MIB }, /memory must be at least 32 MiB/],
    [{ memoryBytes: GIB + 1 }, /whole number of MiB/],
    [{ diskBytes: GIB + 5 }, /disk must be a whole number of MiB/]
  ])('%j is refused', (r, message) => {
    expect(() => parse(r)).toThrow(message)
  })
  it('a good one becomes an action on the VM', () => {
    expect(parse({ memoryBytes: 2 * GIB, restart: true })).toEqual({ kind: 'vm', vm: { id: '', name: 'web-1' }, action: { op: 'resize', size: { vcpus: 0, memoryBytes: 2 * GIB, diskBytes: 0, maxMemoryBytes: 0, maxVcpus: 0 }, restart: true } })
  })
})

describe('vm resize through an agent\'s control socket (simulated hypervisor)', () => {
  let dir: string
  let agent: RunningAgent
  let client: ControlClient
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mv-resize-'))
    const key = join(dir, 'cluster.key')
    await writeClusterKey(key)
    const config = resolveAgentConfig([{ name: 'test', input: { name: 'h0', dataDir: join(dir, 'h0'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], clusterKeyFile: key, overcommit: { cpu: 1 } } }])
    agent = await runAgent(config, {
      log: silentLogger,
      timing: 'local',
      hypervisor: { driver: new SimHypervisor({ hostLimits: { cpus: 4, memoryMiB: 4096 } }), facts: { accelerator: 'tcg', qemuVersion: 'sim', machineTypes: [] } },
      inventory: { vcpus: 4, memoryBytes: 4 * GIB, diskBytes: 20 * GIB }
    })
    client = new ControlClient(agent.controlSocket)
    await client.call({ idempotencyKey: 'r1', createVm: { spec: { name: 'r1', resources: { vcpus: 1, memoryBytes: 256 * MIB, diskBytes: GIB }, boot: { kernel: '/sim/vmlinux' } } } })
  }, 30_000)
  afterAll(async () => { await agent?.stop(); await rm(dir, { recursive: true, force: true }) })

  const resize = async (r: Record<string, unknown>) => (await client.call({ resizeVm: { vm: { name: 'r1' }, ...r } })).vm

  it('a running VM\'s disk grows online; the ledger, the row and the driver agree', async () => {
    const before = agent.ledger.capacity().allocated
    const vm = await resize({ diskBytes: 2 * GIB })
    expect(vm?.summary?.state).toBe(pb.VmState.VM_STATE_RUNNING)
    expect(Number(vm?.summary?.resources?.diskBytes)).toBe(2 * GIB)
    expect(agent.ledger.capacity().allocated.diskBytes - before.diskBytes).toBe(GIB)
    const id = vm?.summary?.id as string
    expect((await agent.hypervisor.inspect(id)).spec.disks?.[0]?.sizeMiB).toBe(2048)
  })

  it('its memory grows online only within room it was given; --restart stops, resizes and starts it', async () => {
    const noRoom = await resize({ memoryBytes: 512 * MIB }).catch((e: unknown) => e as { code: string, message: string })
    expect(noRoom).toMatchObject({ code: 'WRONG_STATE', message: expect.stringMatching(/no room to grow online .*; add --restart/) as unknown })
    const vm = await resize({ memoryBytes: 512 * MIB, vcpus: 2, restart: true })
    expect(vm?.summary?.state).toBe(pb.VmState.VM_STATE_RUNNING)
    expect((await agent.hypervisor.inspect(vm?.summary?.id as string)).spec).toMatchObject({ vcpus: 2, memoryMiB: 512 })
    expect(agent.ledger.capacity().allocated).toMatchObject({ vcpus: 2, memoryBytes: 512 * MIB })
  })

  it('growth beyond the host is refused with what is short, and nothing changes', async () => {
    const before = agent.ledger.capacity().allocated
    await client.call({ stopVm: { vm: { name: 'r1' } } })
    const err = await resize({ memoryBytes: 64 * GIB }).catch((e: unknown) => e as { code: string, message: string })
    expect(err).toMatchObject({ code: 'NO_CAPACITY' })
    expect((err as Error).message).toMatch(/cannot grow VM r1: needs .* MiB memory, .* MiB free\. No other host has room for it either\./)
    expect(await code(resize({ diskBytes: GIB }))).toBe('INVALID_ARGUMENT')
    expect(agent.ledger.capacity().allocated).toEqual(before)
    // Stopped: any size, no restart asked, and it stays stopped.
    const vm = await resize({ vcpus: 1, memoryBytes: 128 * MIB })
    expect(vm?.summary?.state).toBe(pb.VmState.VM_STATE_STOPPED)
    expect(agent.ledger.capacity().allocated).toMatchObject({ vcpus: 1, memoryBytes: 128 * MIB, diskBytes: 2 * GIB })
  })

  it('concurrent resizes of one VM are taken in turn: the row, the ledger and the driver agree', async () => {
    const outcomes = await Promise.allSettled([resize({ diskBytes: 4 * GIB }), resize({ diskBytes: 3 * GIB }), resize({ diskBytes: 5 * GIB })])
    expect(outcomes.filter((o) => o.status === 'fulfilled').length).toBeGreaterThanOrEqual(1)
    for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/a disk only grows/) as unknown })
    const row = agent.vms.findByName('r1')
    expect(row?.resources.diskBytes).toBe(5 * GIB)
    expect(agent.ledger.capacity().allocated.diskBytes).toBe(5 * GIB)
    expect((await agent.hypervisor.inspect(row?.id as string)).spec.disks?.[0]?.sizeMiB).toBe(5 * 1024)
  })
})
