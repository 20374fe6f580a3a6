import { afterEach, describe, expect, it } from 'vitest'
import { ControlClient, type RunningAgent } from '@meshvirt/agent'
import { SimHypervisor } from '@meshvirt/hypervisor'
import { pb } from '@meshvirt/proto'
import { simSpec, startInProcessCluster, type InProcessCluster } from '../support/in-process-cluster.js'
import { pollUntil } from '@meshvirt/testkit'
import { vmSpecFromWire } from '@meshvirt/agent'

const MIB = 2 ** 20
const SITES = [{ site: 'a' }, { site: 'b' }, { site: 'c' }]

// Replication orchestration between real agents (placement of holders, negotiation, the RPO loop,
// failover) with the simulated hypervisor's in-memory disks; real QEMU disks are in test/e2e.
describe('replicas as policy (negotiation, holders, failover)', () => {
  let cluster: InProcessCluster | undefined
  afterEach(async () => { await cluster?.stop(); cluster = undefined })

  const control = async (a: RunningAgent, req: object): Promise<InstanceType<typeof pb.ControlResponse>> => await new ControlClient(a.controlSocket).call(req)
  const inspect = async (a: RunningAgent, id: string): Promise<InstanceType<typeof pb.VmInfo>> => (await control(a, { inspectVm: { vm: { id } } })).vm as InstanceType<typeof pb.VmInfo>
  const holdersOf = (info: InstanceType<typeof pb.VmInfo>): string[] => info.replicas.map((r) => r.hostId ?? '')

  it('places holders in other failure domains, keeps them in sync, counts their disks, and deletes them with the VM', async () => {
    cluster = await startInProcessCluster(SITES.map((labels) => ({ vcpus: 8, memoryMiB: 4096, labels })))
    const [a, b, c] = cluster.agents as [RunningAgent, RunningAgent, RunningAgent]
    const spec = { ...simSpec('db', 256), resources: { vcpus: 1, memoryBytes: 256 * MIB, diskBytes: 64 * MIB }, host: a.hostId, replicas: 1, rpoMs: 1000, spreadBy: 'site' }
    const made = await a.broker.create(vmSpecFromWire(spec), 'db-1')
    const id = made.vm.summary?.id as string

    await pollUntil(async () => (await inspect(c, id)).replicas.some((r) => r.state === 'in-sync'), { timeoutMs: 20_000, what: 'one holder in sync' })
    const info = await inspect(b, id)
    expect(info.replicas).toHaveLength(1)
    const holder = cluster.agents.find((x) => x.hostId === info.replicas[0]?.hostId) as RunningAgent
    expect(holder.hostId).not.toBe(a.hostId)
    expect(Number(info.replicas[0]?.seq)).toBeGreaterThan(0)
    expect(info.replicas[0]?.lagMs).toBeLessThanOrEqual(2 * 1000)
    expect(info.replication?.points).toBeGreaterThan(0)
    // The holder's ledger counts the replica's disk (and nothing else); its advert says it holds it.
    expect(holder.ledger.capacity().allocated).toEqual({ vcpus: 0, memoryBytes: 0, diskBytes: 64 * MIB })
    await pollUntil(() => a.mesh.view.get(holder.hostId)?.advert.vms.some((v) => v.id === id && v.role === 'replica' && v.owner === a.hostId) === true, { timeoutMs: 10_000, what: 'the holder to advertise its replica' })
    // The owner's /metrics carry the holder's lag and state.
    const metrics = await a.monitoring.metrics.render()
    expect(metrics).toMatch(new RegExp(`meshvirt_replica_lag_seconds\\{vm="${id}",name="db",holder="${holder.hostId}"\\} \\d`))
    expect(metrics).toMatch(/meshvirt_replica_holders\{state="in-sync"\} 1/)
    expect(metrics).toMatch(new RegExp(`meshvirt_replication_points_total\\{vm="${id}",name="db"\\} [1-9]`))

    // Two replicas: the second holder is in the third site; asked of a host that is not the owner.
    const more = await control(c, { replicateVm: { vm: { name: 'db' }, replicas: 2 } })
    expect(more.vm?.spec?.replicas).toBe(2)
    await pollUntil(async () => (await inspect(a, id)).replicas.filter((r) => r.state === 'in-sync').length === 2, { timeoutMs: 20_000, what: 'two holders in sync' })
    expect(new Set(holdersOf(await inspect(a, id)))).toEqual(new Set([b.hostId, c.hostId]))

    // A resize reaches the holders: they keep the new spec (a failover starts the VM at its new
    // size) and hold the grown disk; the next points (incrementals of the grown disk) keep them in sync.
    const seqBefore = Math.max(...(await inspect(a, id)).replicas.map((h) => Number(h.seq)))
    const grown = await control(c, { resizeVm: { vm: { name: 'db' }, diskBytes: 128 * MIB } })
    expect(Number(grown.vm?.summary?.resources?.diskBytes)).toBe(128 * MIB)
    for (const x of [b, c]) {
      await pollUntil(() => x.ledger.capacity().allocated.diskBytes === 128 * MIB, { timeoutMs: 20_000, what: 'a holder to hold the grown disk' })
    }
    await pollUntil(async () => {
      const r = (await inspect(a, id)).replicas
      return r.length === 2 && r.every((h) => h.state === 'in-sync') && r.every((h) => Number(h.seq) > seqBefore)
    }, { timeoutMs: 20_000, what: 'both holders in sync with the grown disk' })

    // Bad input is refused with what to fix.
    await expect(control(a, { replicateVm: { vm: { id }, replicas: 99 } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    await expect(control(a, { replicateVm: { vm: { id }, replicas: 1, rpoMs: 10 } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })

    await control(b, { deleteVm: { vm: { id } } })
    for (const x of [b, c]) {
      await pollUntil(() => x.ledger.capacity().allocated.diskBytes === 0, { timeoutMs: 10_000, what: 'the holders to free the replica disks' })
    }
    expect(a.ledger.capacity().allocated).toEqual({ vcpus: 0, memoryBytes: 0, diskBytes: 0 })
  }, 90_000)

  it('a VM created with replicas but without a disk, or with a bad spread label, is refused', async () => {
    cluster = await startInProcessCluster([{ vcpus: 4, memoryMiB: 2048 }])
    const a = cluster.agents[0] as RunningAgent
    await expect(a.broker.create(vmSpecFromWire({ ...simSpec('nodisk'), replicas: 1 }), 'k1')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/--disk/) })
    await expect(a.broker.create(vmSpecFromWire({ ...simSpec('badlabel'), resources: { vcpus: 1, memoryBytes: 128 * MIB, diskBytes: 8 * MIB }, replicas: 1, spreadBy: 'no spaces' }), 'k2')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
  }, 30_000)

  it('vm failover: refused while the owner lives; after its death the freshest holder runs the VM with epoch + 1 and replication continues', async () => {
    cluster = await startInProcessCluster(SITES.map((labels) => ({ vcpus: 8, memoryMiB: 4096, labels })))
    const [a, b, c] = cluster.agents as [RunningAgent, RunningAgent, RunningAgent]
    const spec = { ...simSpec('app', 256), resources: { vcpus: 1, memoryBytes: 256 * MIB, diskBytes: 32 * MIB }, host: a.hostId, replicas: 1, rpoMs: 1000 }
    const id = (await a.broker.create(vmSpecFromWire(spec), 'app-1')).vm.summary?.id as string
    await pollUntil(async () => (await inspect(a, id)).replicas.some((r) => r.state === 'in-sync'), { timeoutMs: 20_000, what: 'the holder in sync' })
    const holderId = holdersOf(await inspect(a, id))[0] as string
    const holder = [b, c].find((x) => x.hostId === holderId) as RunningAgent
    const other = [b, c].find((x) => x.hostId !== holderId) as RunningAgent
    // Failover finds holders through gossip: wait until the third host has heard of the replica.
    await pollUntil(() => other.mesh.view.get(holderId)?.advert.vms.some((v) => v.id === id && v.role === 'replica') === true, { timeoutMs: 10_000, what: 'the replica gossiped' })

    await expect(control(other, { failoverVm: { vm: { name: 'app' } } })).rejects.toMatchObject({ code: 'WRONG_STATE', message: expect.stringMatching(/dead owner/) })

    await a.stop()
    await pollUntil(() => other.mesh.view.get(a.hostId)?.liveness === 'dead' && holder.mesh.view.get(a.hostId)?.liveness === 'dead', { timeoutMs: 20_000, what: 'the owner seen dead' })
    const res = await control(other, { failoverVm: { vm: { name: 'app' } } })
    expect(res.vm?.summary).toMatchObject({ id, owner: holder.hostId, epoch: 2, state: pb.VmState.VM_STATE_RUNNING })
    // The promoted replica is a VM now: its disk moved from "replica" to the VM in the ledger.
    expect(holder.ledger.capacity().allocated).toEqual({ vcpus: 1, memoryBytes: 256 * MIB, diskBytes: 32 * MIB })
    // The new owner places a new holder (the only live host left) and ships it epoch-2 points.
    await pollUntil(async () => {
      const info = await inspect(other, id)
      return info.replicas.some((r) => r.hostId === other.hostId && r.state === 'in-sync' && Number(r.epoch) === 2)
    }, { timeoutMs: 30_000, what: 'a new holder in sync at epoch 2' })
  }, 90_000)

  it('automatic failover: the owner dies and, with nobody asking, its holder runs the VM with epoch + 1 within 10 s; vm show tells what happened', async () => {
    cluster = await startInProcessCluster(SITES.map((labels) => ({ vcpus: 8, memoryMiB: 4096, labels })))
    const [a, b, c] = cluster.agents as [RunningAgent, RunningAgent, RunningAgent]
    const spec = { ...simSpec('auto', 256), resources: { vcpus: 1, memoryBytes: 256 * MIB, diskBytes: 16 * MIB }, host: a.hostId, replicas: 1, rpoMs: 1000, spreadBy: 'site' }
    const id = (await a.broker.create(vmSpecFromWire(spec), 'auto-1')).vm.summary?.id as string
    await pollUntil(async () => (await inspect(a, id)).replicas.some((r) => r.state === 'in-sync'), { timeoutMs: 20_000, what: 'the holder in sync' })
    // Owner + 1 holder is even: the third host is the witness, and the owner holds the lease.
    const before = await pollUntil(async () => { const i = await inspect(a, id); return i.lease?.role === 'owner' && i.lease.running && (i.lease.members ?? []).length === 3 ? i : undefined }, { timeoutMs: 10_000, what: 'the owner to hold its lease with its whole group' })
    const holderId = holdersOf(before)[0] as string
    const holder = [b, c].find((x) => x.hostId === holderId) as RunningAgent
    const witness = [b, c].find((x) => x.hostId !== holderId) as RunningAgent
    expect(before.lease?.members).toEqual([a.hostId, holderId, witness.hostId])
    expect(before.lease?.witness).toBe(witness.hostId)
    // The group is formed once the holder has had a renewal (a holder that never had one knows no lease).
    await pollUntil(() => holder.lease?.state(id) !== undefined && witness.lease?.state(id) !== undefined, { timeoutMs: 10_000, what: 'the holder and the witness to take part in the lease' })

    const killedAt = Date.now()
    await a.stop()
    const after = await pollUntil(() => holder.vms.get(id)?.state === 'running' ? holder.vms.get(id) : undefined, { timeoutMs: 15_000, what: 'the VM to run on its holder' })
    const tookMs = Date.now() - killedAt
    console.log(`automatic failover (simulated hypervisor, default lease timing): ${tookMs} ms from the owner's stop to the VM running on its holder`)
    expect(tookMs).toBeLessThan(10_000)
    expect(after.epoch).toBe(2)
    const info = await inspect(witness, id)
    expect(info.summary).toMatchObject({ owner: holderId, epoch: 2 })
    expect(info.leaseHistory.map((h) => h.type)).toEqual(expect.arrayContaining(['elected', 'promoted']))
    expect(info.lease).toMatchObject({ role: 'owner', epoch: 2 })

    // What happened is still told after the new owner's agent restarts (the history is in its store).
    await holder.stop()
    const restarted = await cluster.restart(cluster.agents.indexOf(holder))
    const told = (await inspect(restarted, id)).leaseHistory
    expect(told.map((h) => h.type)).toEqual(expect.arrayContaining(['elected', 'promoted', 'restarted']))
    expect(told.find((h) => h.type === 'elected')).toMatchObject({ epoch: 2, hostId: holderId })
  }, 90_000)

  it('a restarted old owner never runs its stale copy: it learns the newer epoch and steps down', async () => {
    cluster = await startInProcessCluster(SITES.map((labels) => ({ vcpus: 8, memoryMiB: 4096, labels })))
    const [a, b, c] = cluster.agents as [RunningAgent, RunningAgent, RunningAgent]
    const spec = { ...simSpec('back', 256), resources: { vcpus: 1, memoryBytes: 256 * MIB, diskBytes: 16 * MIB }, host: a.hostId, replicas: 1, rpoMs: 1000, spreadBy: 'site' }
    const id = (await a.broker.create(vmSpecFromWire(spec), 'back-1')).vm.summary?.id as string
    await pollUntil(async () => (await inspect(a, id)).replicas.some((r) => r.state === 'in-sync'), { timeoutMs: 20_000, what: 'the holder in sync' })
    const before = await pollUntil(async () => { const i = await inspect(a, id); return i.lease?.role === 'owner' && i.lease.running && (i.lease.members ?? []).length === 3 ? i : undefined }, { timeoutMs: 10_000, what: 'the owner to hold its lease with its whole group' })
    const holderId = holdersOf(before)[0]
    const holder = [b, c].find((x) => x.hostId === holderId) as RunningAgent
    const witness = [b, c].find((x) => x.hostId !== holderId) as RunningAgent
    // The holder needs the witness's vote, and a member that never had a renewal knows no lease and
    // refuses it: wait until both have had one (as the automatic failover case does).
    await pollUntil(() => holder.lease?.state(id) !== undefined && witness.lease?.state(id) !== undefined, { timeoutMs: 10_000, what: 'the holder and the witness to take part in the lease' })
    await a.stop()
    await pollUntil(() => holder.vms.get(id)?.state === 'running', { timeoutMs: 15_000, what: 'the VM to run on its holder' })

    // The old owner comes back with its row (epoch 1, meant to run) and no guest: it must not start one.
    const hv = new SimHypervisor({ hostLimits: { cpus: 8, memoryMiB: 4096 } })
    let copiesOnOld = 0
    const sampler = setInterval(() => { void hv.list().then((l) => { if (l.some((v) => v.id === id && v.state === 'running')) copiesOnOld++ }) }, 20)
    try {
      const back = await cluster.restart(0, hv)
      await pollUntil(() => back.vms.get(id) === undefined, { timeoutMs: 15_000, what: 'the old owner to give the VM up' })
      await new Promise((resolve) => setTimeout(resolve, 2000))
    } finally {
      clearInterval(sampler)
    }
    expect(copiesOnOld).toBe(0)
    expect(holder.vms.get(id)).toMatchObject({ state: 'running', epoch: 2 })
  }, 90_000)

  it('a live migration hands the replica group and the rest of the lease to the destination: no fence, same holder, epoch 2', async () => {
    cluster = await startInProcessCluster(SITES.map((labels) => ({ vcpus: 8, memoryMiB: 4096, labels })))
    const [a, b, c] = cluster.agents as [RunningAgent, RunningAgent, RunningAgent]
    const spec = { ...simSpec('mover', 256), resources: { vcpus: 1, memoryBytes: 256 * MIB, diskBytes: 16 * MIB }, host: a.hostId, replicas: 1, rpoMs: 1000 }
    const id = (await a.broker.create(vmSpecFromWire(spec), 'mover-1')).vm.summary?.id as string
    await pollUntil(async () => (await inspect(a, id)).replicas.some((r) => r.state === 'in-sync'), { timeoutMs: 20_000, what: 'the holder in sync' })
    const holderId = holdersOf(await inspect(a, id))[0] as string
    const dest = [b, c].find((x) => x.hostId !== holderId) as RunningAgent

    const moved = await control(a, { migrateVm: { vm: { id }, toHost: dest.hostId } })
    expect(moved.vm?.summary).toMatchObject({ owner: dest.hostId, epoch: 2 })
    const startedAt = dest.vms.get(id)?.startedAt
    // The guest keeps running there (never fenced while the new owner proves its lease) …
    await pollUntil(async () => { const i = await inspect(dest, id); return i.lease?.role === 'owner' && i.lease.epoch === 2 && i.lease.running }, { timeoutMs: 10_000, what: 'the destination to hold the lease at epoch 2' })
    await new Promise((resolve) => setTimeout(resolve, 3000))
    const info = await inspect(dest, id)
    expect(info.leaseHistory.map((h) => h.type)).not.toContain('fenced')
    expect(dest.vms.get(id)).toMatchObject({ state: 'running', startedAt })
    // … with the same holder, which follows the new owner.
    expect(holdersOf(info)).toEqual([holderId])
    await pollUntil(async () => (await inspect(dest, id)).replicas.some((r) => r.hostId === holderId && r.state === 'in-sync' && Number(r.epoch) === 2), { timeoutMs: 20_000, what: 'the holder in sync at epoch 2' })
  }, 90_000)

  it('a stopped replicated VM moves cold: ownership, lease group and holder go to the destination, and it starts there', async () => {
    cluster = await startInProcessCluster(SITES.map((labels) => ({ vcpus: 8, memoryMiB: 4096, labels })))
    const [a, b, c] = cluster.agents as [RunningAgent, RunningAgent, RunningAgent]
    const spec = { ...simSpec('parked', 256), resources: { vcpus: 1, memoryBytes: 256 * MIB, diskBytes: 16 * MIB }, host: a.hostId, replicas: 1, rpoMs: 1000 }
    const id = (await a.broker.create(vmSpecFromWire(spec), 'parked-1')).vm.summary?.id as string
    await pollUntil(async () => (await inspect(a, id)).replicas.some((r) => r.state === 'in-sync'), { timeoutMs: 20_000, what: 'the holder in sync' })
    const holderId = holdersOf(await inspect(a, id))[0] as string
    const dest = [b, c].find((x) => x.hostId !== holderId) as RunningAgent
    await control(a, { stopVm: { vm: { id } } })

    const moved = await control(a, { migrateVm: { vm: { id }, toHost: dest.hostId } })
    expect(moved.vm?.summary).toMatchObject({ owner: dest.hostId, epoch: 2 })
    expect(dest.vms.get(id)).toMatchObject({ state: 'stopped', epoch: 2 })
    expect(a.vms.get(id)).toBeUndefined()
    // The destination leads the lease group at epoch 2, with the same holder.
    await pollUntil(async () => { const i = await inspect(dest, id); return i.lease?.role === 'owner' && i.lease.epoch === 2 }, { timeoutMs: 10_000, what: 'the destination to own the lease at epoch 2' })
    expect(holdersOf(await inspect(dest, id))).toEqual([holderId])
    // Started there, it runs and its holder follows the new owner.
    await control(dest, { startVm: { vm: { id } } })
    await pollUntil(async () => dest.vms.get(id)?.state === 'running', { timeoutMs: 10_000, what: 'the VM running on the destination' })
    await pollUntil(async () => (await inspect(dest, id)).replicas.some((r) => r.hostId === holderId && r.state === 'in-sync' && Number(r.epoch) === 2), { timeoutMs: 20_000, what: 'the holder in sync at epoch 2' })
    expect((await inspect(dest, id)).leaseHistory.map((h) => h.type)).not.toContain('fenced')
  }, 90_000)

  it('a stopped replicated VM starts again on its owner once its lease has seen it stopped', async () => {
    cluster = await startInProcessCluster(SITES.map((labels) => ({ vcpus: 8, memoryMiB: 4096, labels })))
    const [a] = cluster.agents as [RunningAgent, RunningAgent, RunningAgent]
    const spec = { ...simSpec('ss', 256), resources: { vcpus: 1, memoryBytes: 256 * MIB, diskBytes: 16 * MIB }, host: a.hostId, replicas: 1, rpoMs: 1000 }
    const id = (await a.broker.create(vmSpecFromWire(spec), 'ss-1')).vm.summary?.id as string
    await pollUntil(async () => (await inspect(a, id)).replicas.some((r) => r.state === 'in-sync'), { timeoutMs: 20_000, what: 'the holder in sync' })
    await control(a, { stopVm: { vm: { id } } })
    // Long enough for the lease to see the guest stopped (it re-reads the owned groups every 200 ms).
    await new Promise((resolve) => setTimeout(resolve, 1500))
    await control(a, { startVm: { vm: { id } } })
    await pollUntil(async () => a.vms.get(id)?.state === 'running', { timeoutMs: 10_000, what: 'the VM running again' })
  }, 90_000)
})
