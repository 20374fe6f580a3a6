import { afterEach, describe, expect, it, vi } from 'vitest'
import { ControlClient } from '@meshvirt/agent'
import type { SimHypervisor } from '@meshvirt/hypervisor'
import { pb } from '@meshvirt/proto'
import { simSpec, startInProcessCluster, type InProcessCluster } from '../support/in-process-cluster.js'
import { pollUntil } from '@meshvirt/testkit'
import { vmSpecFromWire } from '@meshvirt/agent'

const MIB = 2 ** 20

// The migration protocol between real agents (negotiation, tunnels, ownership hand-over) with the
// simulated hypervisor; the real QEMU path is covered end to end in test/e2e.
describe('live migration between agents (negotiation and ownership)', () => {
  let cluster: InProcessCluster | undefined
  afterEach(async () => { await cluster?.stop(); cluster = undefined })

  async function controlOn (agentIndex: number, req: object): Promise<InstanceType<typeof pb.ControlResponse>> {
    const a = cluster!.agents[agentIndex]!
    return await new ControlClient(a.controlSocket).call(req)
  }

  it('moves a VM: the destination owns it with epoch + 1, the source frees its resources', async () => {
    cluster = await startInProcessCluster([{ vcpus: 8, memoryMiB: 4096 }, { vcpus: 8, memoryMiB: 4096 }, { vcpus: 8, memoryMiB: 4096 }])
    const [a, b, c] = cluster.agents as [typeof cluster.agents[0], typeof cluster.agents[0], typeof cluster.agents[0]]
    const made = await a.broker.create(vmSpecFromWire({ ...simSpec('mover', 512), host: a.hostId }), 'mover-1')
    const id = made.vm.summary?.id as string
    await pollUntil(() => a.vms.get(id)?.state === 'running', { timeoutMs: 5000, what: 'the VM to run on a' })

    // Asked of c (neither source nor destination): forwarded to the owner a.
    const res = await controlOn(2, { migrateVm: { vm: { name: 'mover' }, toHost: 'h1' } })
    expect(res.vm?.summary).toMatchObject({ id, owner: b.hostId, epoch: 2, state: pb.VmState.VM_STATE_RUNNING })
    expect(res.vm?.lastMigration).toMatchObject({ fromHost: a.hostId, toHost: b.hostId, error: '' })
    expect(a.vms.get(id)).toBeUndefined()
    expect(a.ledger.capacity().allocated.memoryBytes).toBe(0)
    expect(b.ledger.capacity().allocated.memoryBytes).toBe(512 * MIB)
    expect(await (a.hypervisor as SimHypervisor).list()).toEqual([])
    // Every host comes to see the new owner.
    for (const agent of [a, b, c]) {
      await pollUntil(() => agent.mesh.view.get(b.hostId)?.advert.vms.some((v) => v.id === id && v.epoch === 2), { timeoutMs: 10_000, what: 'the new owner gossiped' })
    }
  }, 60_000)

  it('a host whose gossip is a step behind a move forwards to the former owner, then asks where the VM is', async () => {
    cluster = await startInProcessCluster([{ vcpus: 8, memoryMiB: 4096 }, { vcpus: 8, memoryMiB: 4096 }, { vcpus: 8, memoryMiB: 4096 }])
    const [a, b, c] = cluster.agents as [typeof cluster.agents[0], typeof cluster.agents[0], typeof cluster.agents[0]]
    const made = await a.broker.create(vmSpecFromWire({ ...simSpec('lagged', 512), host: a.hostId }), 'lagged-1')
    const id = made.vm.summary?.id as string
    await pollUntil(() => c.mesh.view.get(a.hostId)?.advert.vms.some((v) => v.id === id) === true, { timeoutMs: 10_000, what: 'c to hear of the VM on a' })
    // c's view stays as it was before the move (CI saw `vm start` right after `vm migrate` take this path).
    const before = c.mesh.view.hosts()
    const hosts = vi.spyOn(c.mesh.view, 'hosts').mockImplementation(() => before)
    try {
      await controlOn(0, { migrateVm: { vm: { id }, toHost: b.hostId } })
      const res = await controlOn(2, { stopVm: { vm: { name: 'lagged' } } })
      expect(res.vm?.summary).toMatchObject({ id, owner: b.hostId, state: pb.VmState.VM_STATE_STOPPED })
      expect(b.vms.get(id)?.state).toBe('stopped')
    } finally {
      hosts.mockRestore()
    }
  }, 60_000)

  it('a failed migration leaves the VM running on the source and nothing on the destination', async () => {
    cluster = await startInProcessCluster([{ vcpus: 8, memoryMiB: 4096 }, { vcpus: 8, memoryMiB: 4096 }])
    const [a, b] = cluster.agents as [typeof cluster.agents[0], typeof cluster.agents[0]]
    const made = await a.broker.create(vmSpecFromWire({ ...simSpec('stayer', 512), host: a.hostId }), 'stayer-1')
    const id = made.vm.summary?.id as string
    await pollUntil(() => a.vms.get(id)?.state === 'running', { timeoutMs: 5000, what: 'the VM to run on a' })
    ;(a.hypervisor as SimHypervisor).failNextMigration(id)

    await expect(controlOn(0, { migrateVm: { vm: { id }, toHost: b.hostId } })).rejects.toMatchObject({ code: 'MIGRATION_FAILED' })
    expect(a.vms.get(id)).toMatchObject({ state: 'running', owner: a.hostId, epoch: 1 })
    expect((await (a.hypervisor as SimHypervisor).inspect(id)).state).toBe('running')
    expect(b.vms.get(id)).toBeUndefined()
    expect(await (b.hypervisor as SimHypervisor).list()).toEqual([])
    expect(b.ledger.capacity().allocated.memoryBytes).toBe(0)
    expect(b.ledger.capacity().reservations.memoryBytes).toBe(0)
    const info = await controlOn(1, { inspectVm: { vm: { id } } })
    expect(info.vm?.lastMigration?.error).toMatch(/injected/)
  }, 60_000)

  it('a source QEMU that dies with its migration: reported crashed, not running, and restarted by its policy', async () => {
    cluster = await startInProcessCluster([{ vcpus: 8, memoryMiB: 4096 }, { vcpus: 8, memoryMiB: 4096 }])
    const [a, b] = cluster.agents as [typeof cluster.agents[0], typeof cluster.agents[0]]
    const made = await a.broker.create(vmSpecFromWire({ ...simSpec('faller', 256), host: a.hostId }), 'faller-1')
    const id = made.vm.summary?.id as string
    await pollUntil(() => a.vms.get(id)?.state === 'running', { timeoutMs: 5000, what: 'the VM to run on a' })
    const sim = a.hypervisor as SimHypervisor
    const startedBefore = (await sim.inspect(id)).startedAt
    sim.failNextMigration(id, 'crash')

    const err = await controlOn(0, { migrateVm: { vm: { id }, toHost: b.hostId } }).then(() => undefined, (e: Error) => e)
    expect(err).toMatchObject({ code: 'MIGRATION_FAILED' })
    expect(err?.message).toMatch(/migration of faller failed, it crashed \(its QEMU exited\) on this host: .*the source QEMU exited/)
    expect(err?.message).not.toMatch(/keeps running/)
    // The restart policy (on-crash) heard of the exit: the guest runs again here, a new process.
    await pollUntil(async () => a.vms.get(id)?.state === 'running' && (await sim.inspect(id)).startedAt !== startedBefore, { timeoutMs: 10_000, what: 'the guest restarted on a' })
    expect(a.vms.get(id)).toMatchObject({ owner: a.hostId, epoch: 1 })
    expect(b.vms.get(id)).toBeUndefined()
    expect(b.ledger.capacity().reservations.memoryBytes).toBe(0)
    const info = await controlOn(0, { inspectVm: { vm: { id } } })
    expect(info.vm?.lastMigration?.error).toMatch(/source QEMU exited/)
  }, 60_000)

  it('refuses clearly: an unknown host, the host it is on, bad parameters; a stopped VM moves cold and stays stopped', async () => {
    cluster = await startInProcessCluster([{ vcpus: 8, memoryMiB: 4096 }, { vcpus: 8, memoryMiB: 4096 }])
    const [a] = cluster.agents
    const made = await a!.broker.create(vmSpecFromWire({ ...simSpec('picky', 256), host: a!.hostId }), 'picky-1')
    const id = made.vm.summary?.id as string
    await pollUntil(() => a!.vms.get(id)?.state === 'running', { timeoutMs: 5000, what: 'the VM to run' })
    await expect(controlOn(1, { migrateVm: { vm: { id }, toHost: 'nowhere' } })).rejects.toMatchObject({ code: 'NOT_FOUND' })
    await expect(controlOn(1, { migrateVm: { vm: { id }, toHost: 'h0' } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    await expect(controlOn(1, { migrateVm: { vm: { id }, params: { downtimeLimitMs: 999_999 } } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    await controlOn(1, { stopVm: { vm: { id } } })
    const moved = await controlOn(1, { migrateVm: { vm: { id } } })
    expect(moved.vm?.summary).toMatchObject({ owner: cluster.agents[1]!.hostId, epoch: 2, state: pb.VmState.VM_STATE_STOPPED })
    expect(moved.vm?.lastMigration?.error).toBe('')
    expect(await (a!.hypervisor as SimHypervisor).list()).toEqual([])
    expect((await (cluster.agents[1]!.hypervisor as SimHypervisor).inspect(id)).state).toBe('stopped')
    expect(a!.ledger.capacity().allocated.memoryBytes).toBe(0)
    // Started where it arrived.
    const started = await controlOn(0, { startVm: { vm: { id } } })
    expect(started.vm?.summary?.state).toBe(pb.VmState.VM_STATE_RUNNING)
  }, 60_000)

  it('chooses the data path: auto → direct TLS when the destination is reachable, --via mesh → the tunnel, bad choices refused', async () => {
    cluster = await startInProcessCluster([{ vcpus: 8, memoryMiB: 4096 }, { vcpus: 8, memoryMiB: 4096 }])
    const [a, b] = cluster.agents as [typeof cluster.agents[0], typeof cluster.agents[0]]
    const made = await a.broker.create(vmSpecFromWire({ ...simSpec('walker', 256), host: a.hostId }), 'walker-1')
    const id = made.vm.summary?.id as string
    await pollUntil(() => a.vms.get(id)?.state === 'running', { timeoutMs: 5000, what: 'the VM to run on a' })
    await expect(controlOn(0, { migrateVm: { vm: { id }, params: { via: 'carrier-pigeon' } } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    await expect(controlOn(0, { migrateVm: { vm: { id }, params: { channels: 99 } } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    expect(a.vms.get(id)?.state).toBe('running')

    const auto = await controlOn(0, { migrateVm: { vm: { id }, toHost: b.hostId } })
    expect(auto.vm?.lastMigration).toMatchObject({ path: 'direct-tls', pathReason: 'auto: 127.0.0.1 reachable', channels: 2, error: '' })
    const mesh = await controlOn(1, { migrateVm: { vm: { id }, toHost: a.hostId, params: { via: 'mesh' } } })
    expect(mesh.vm?.lastMigration).toMatchObject({ path: 'mesh', channels: 1, error: '' })
    const direct = await controlOn(0, { migrateVm: { vm: { id }, toHost: b.hostId, params: { via: 'direct', channels: 4 } } })
    expect(direct.vm?.lastMigration).toMatchObject({ path: 'direct-tls', channels: 4, error: '' })
    expect(direct.vm?.summary).toMatchObject({ owner: b.hostId, epoch: 4 })
  }, 60_000)

  it('never across accelerators: a TCG guest does not move to a KVM host, and the explanation says so', async () => {
    cluster = await startInProcessCluster([{ vcpus: 8, memoryMiB: 4096 }, { vcpus: 8, memoryMiB: 4096, accel: 'kvm' }, { vcpus: 8, memoryMiB: 4096 }])
    const [a, , c] = cluster.agents as [typeof cluster.agents[0], typeof cluster.agents[0], typeof cluster.agents[0]]
    const made = await a.broker.create(vmSpecFromWire({ ...simSpec('tcg-1', 256), host: a.hostId }), 'tcg-1')
    const id = made.vm.summary?.id as string
    await pollUntil(() => a.vms.get(id)?.state === 'running', { timeoutMs: 5000, what: 'the VM to run on a' })
    await expect(controlOn(0, { migrateVm: { vm: { id }, toHost: 'h1' } })).rejects.toMatchObject({
      code: 'MIGRATION_FAILED', message: expect.stringMatching(/1 runs KVM, not TCG \(never across accelerators\)/)
    })
    expect(a.vms.get(id)?.state).toBe('running')
    // Placement chooses: only the other TCG host qualifies, and gets it every time.
    const res = await controlOn(0, { migrateVm: { vm: { id } } })
    expect(res.vm?.summary?.owner).toBe(c.hostId)
    const rejected = res.vm?.placement?.rejected?.find((r) => r.filter === 'ACCELERATOR')
    expect(rejected?.reason).toMatch(/host runs kvm, the VM runs under tcg and QEMU cannot migrate a guest across accelerators/)
  }, 60_000)

  it('refuses a destination without room, with the reason', async () => {
    cluster = await startInProcessCluster([{ vcpus: 8, memoryMiB: 4096 }, { vcpus: 8, memoryMiB: 512 }])
    const [a] = cluster.agents
    const made = await a!.broker.create(vmSpecFromWire({ ...simSpec('roomy', 1024), host: a!.hostId }), 'roomy-1')
    await pollUntil(() => a!.vms.get(made.vm.summary?.id as string)?.state === 'running', { timeoutMs: 5000, what: 'the VM to run' })
    await expect(controlOn(0, { migrateVm: { vm: { name: 'roomy' }, toHost: 'h1' } })).rejects.toMatchObject({
      code: 'MIGRATION_FAILED', message: expect.stringMatching(/lacks memory \(need 1024 MiB, most free 512 MiB\)/)
    })
    expect(a!.vms.get(made.vm.summary?.id as string)?.state).toBe('running')
  }, 60_000)

  it('drain moves every VM off a host with bounded concurrency, and placement then avoids it until undrained', async () => {
    cluster = await startInProcessCluster([{ vcpus: 16, memoryMiB: 8192 }, { vcpus: 16, memoryMiB: 8192 }, { vcpus: 16, memoryMiB: 8192 }])
    const [a, b, c] = cluster.agents as [typeof cluster.agents[0], typeof cluster.agents[0], typeof cluster.agents[0]]
    for (const i of [1, 2, 3]) await a.broker.create(vmSpecFromWire({ ...simSpec(`d${i}`, 256), host: a.hostId }), `d-${i}`)
    await pollUntil(() => a.vms.list().length === 3 && a.vms.list().every((v) => v.state === 'running'), { timeoutMs: 5000, what: '3 VMs running on a' })

    const res = await controlOn(2, { drainHost: { host: 'h0', concurrency: 2 } })
    expect(res.drainReport?.state).toBe('drained')
    expect(res.drainReport?.vms?.map((m) => m.error ?? '')).toEqual(['', '', ''])
    expect(a.vms.list()).toEqual([])
    expect(b.vms.list().length + c.vms.list().length).toBe(3)
    expect(a.ledger.capacity().allocated.memoryBytes).toBe(0)
    // Draining/drained: gossiped, refused at Reserve, never chosen.
    await pollUntil(() => b.mesh.view.get(a.hostId)?.advert.state === 'drained', { timeoutMs: 10_000, what: 'the drained state gossiped' })
    await expect(b.broker.create(vmSpecFromWire({ ...simSpec('pinned', 256), host: a.hostId }), 'pinned-1')).rejects.toMatchObject({ code: 'NO_CAPACITY' })
    const placed = await b.broker.create(vmSpecFromWire(simSpec('free', 256)), 'free-1')
    expect(placed.vm.summary?.owner).not.toBe(a.hostId)

    const undrained = await controlOn(1, { drainHost: { host: a.hostId, undrain: true } })
    expect(undrained.drainReport?.state).toBe('active')
    await pollUntil(() => b.mesh.view.get(a.hostId)?.advert.state === 'active', { timeoutMs: 10_000, what: 'active again' })
    const back = await b.broker.create(vmSpecFromWire({ ...simSpec('back', 256), host: a.hostId }), 'back-1')
    expect(back.vm.summary?.owner).toBe(a.hostId)
  }, 60_000)
})
