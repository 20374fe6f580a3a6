import { afterEach, describe, expect, it } from 'vitest'
import { ControlClient, type RunningAgent, type VmResource } from '@meshvirt/agent'
import type { SimHypervisor } from '@meshvirt/hypervisor'
import { pb } from '@meshvirt/proto'
import { pollUntil } from '@meshvirt/testkit'
import { simSpec, startInProcessCluster, type InProcessCluster } from '../support/in-process-cluster.js'
import { vmSpecFromWire } from '@meshvirt/agent'

const MIB = 2 ** 20
const SITES = [{ site: 'a' }, { site: 'b' }, { site: 'c' }]

/** What a feature's per-VM resource (a NIC, an image) would be asked on one host, in order. */
function recordingResource (seen: string[], opts: { fail?: boolean } = {}): VmResource {
  return {
    name: 'probe',
    prepare: (vm, driver) => {
      seen.push(`prepare ${vm.id} ${vm.origin.kind}`)
      if (opts.fail === true) throw new Error('the probe network is down')
      return driver
    },
    release: (id) => { seen.push(`release ${id}`) }
  }
}

// Create, incoming migration and replica promotion are one path on a host (vm/vm-preparation.ts):
// a per-VM resource registered once is prepared for all three and released when the guest leaves.
describe('one way a VM comes to exist on a host', () => {
  let cluster: InProcessCluster | undefined
  afterEach(async () => { await cluster?.stop(); cluster = undefined })

  const control = async (a: RunningAgent, req: object): Promise<InstanceType<typeof pb.ControlResponse>> => await new ControlClient(a.controlSocket).call(req)

  it('create, migrate in and out, delete: each host prepares the resource for the VM it runs and releases it when the VM leaves', async () => {
    const seen: string[][] = [[], []]
    cluster = await startInProcessCluster([{ vcpus: 8, memoryMiB: 4096 }, { vcpus: 8, memoryMiB: 4096 }], { vmResources: (i) => [recordingResource(seen[i] as string[])] })
    const [a, b] = cluster.agents as [RunningAgent, RunningAgent]
    const id = (await a.broker.create(vmSpecFromWire({ ...simSpec('web', 256), host: a.hostId }), 'web-1')).vm.summary?.id as string
    await pollUntil(() => a.vms.get(id)?.state === 'running', { timeoutMs: 5000, what: 'the VM to run on h0' })
    expect(seen).toEqual([[`prepare ${id} create`], []])

    const moved = await control(a, { migrateVm: { vm: { id }, toHost: b.hostId } })
    expect(moved.vm?.summary).toMatchObject({ owner: b.hostId, epoch: 2 })
    expect(seen).toEqual([[`prepare ${id} create`, `release ${id}`], [`prepare ${id} incoming`]])

    await control(a, { deleteVm: { vm: { id } } })
    await pollUntil(() => b.vms.get(id) === undefined, { timeoutMs: 5000, what: 'the VM deleted on h1' })
    expect(seen[1]).toEqual([`prepare ${id} incoming`, `release ${id}`])
  }, 60_000)

  it('a migration that does not arrive releases the destination\'s resource; the VM runs on at the source', async () => {
    const seen: string[][] = [[], []]
    cluster = await startInProcessCluster([{ vcpus: 8, memoryMiB: 4096 }, { vcpus: 8, memoryMiB: 4096 }], { vmResources: (i) => [recordingResource(seen[i] as string[])] })
    const [a, b] = cluster.agents as [RunningAgent, RunningAgent]
    const id = (await a.broker.create(vmSpecFromWire({ ...simSpec('stay', 256), host: a.hostId }), 'stay-1')).vm.summary?.id as string
    await pollUntil(() => a.vms.get(id)?.state === 'running', { timeoutMs: 5000, what: 'the VM to run on h0' })
    ;(a.hypervisor as SimHypervisor).failNextMigration(id)
    await expect(control(a, { migrateVm: { vm: { id }, toHost: b.hostId } })).rejects.toMatchObject({ code: 'MIGRATION_FAILED' })
    await pollUntil(() => seen[1]?.includes(`release ${id}`), { timeoutMs: 5000, what: 'the destination to release what it prepared' })
    expect(seen[1]).toEqual([`prepare ${id} incoming`, `release ${id}`])
    expect(seen[0]).toEqual([`prepare ${id} create`])
    expect(a.vms.get(id)).toMatchObject({ state: 'running', epoch: 1 })
  }, 60_000)

  it('a resource that cannot be prepared: the VM is failed with the resource named, nothing runs, and delete releases it', async () => {
    const seen: string[] = []
    cluster = await startInProcessCluster([{ vcpus: 8, memoryMiB: 4096 }], { vmResources: () => [recordingResource(seen, { fail: true })] })
    const a = cluster.agents[0] as RunningAgent
    const id = (await a.broker.create(vmSpecFromWire(simSpec('broken', 256)), 'broken-1')).vm.summary?.id as string
    const failed = await pollUntil(() => a.vms.get(id)?.state === 'failed' ? a.vms.get(id) : undefined, { timeoutMs: 5000, what: 'the VM to fail' })
    expect(failed.lastError).toBe('probe: the probe network is down')
    expect(await (a.hypervisor as SimHypervisor).list()).toEqual([])
    expect(seen).toEqual([`prepare ${id} create`])
    await control(a, { deleteVm: { vm: { id } } })
    expect(a.vms.get(id)).toBeUndefined()
    expect(seen).toEqual([`prepare ${id} create`, `release ${id}`])
    expect(a.ledger.capacity().allocated.memoryBytes).toBe(0)
  }, 30_000)

  it('a replica promoted by failover comes to exist the same way: its holder prepares the resource as a promotion', async () => {
    const seen: string[][] = [[], [], []]
    cluster = await startInProcessCluster(SITES.map((labels) => ({ vcpus: 8, memoryMiB: 4096, labels })), { vmResources: (i) => [recordingResource(seen[i] as string[])] })
    const [a, b, c] = cluster.agents as [RunningAgent, RunningAgent, RunningAgent]
    const spec = { ...simSpec('db', 256), resources: { vcpus: 1, memoryBytes: 256 * MIB, diskBytes: 16 * MIB }, host: a.hostId, replicas: 1, rpoMs: 1000, spreadBy: 'site' }
    const id = (await a.broker.create(vmSpecFromWire(spec), 'db-1')).vm.summary?.id as string
    const inspect = async (x: RunningAgent): Promise<InstanceType<typeof pb.VmInfo>> => (await control(x, { inspectVm: { vm: { id } } })).vm as InstanceType<typeof pb.VmInfo>
    const synced = await pollUntil(async () => { const i = await inspect(a); return i.replicas.some((r) => r.state === 'in-sync') && i.lease?.running === true && (i.lease.members ?? []).length === 3 ? i : undefined }, { timeoutMs: 20_000, what: 'the holder in sync and the lease held' })
    const holderIndex = cluster.agents.findIndex((x) => x.hostId === synced.replicas[0]?.hostId)
    const holder = cluster.agents[holderIndex] as RunningAgent
    const witness = [b, c].find((x) => x !== holder) as RunningAgent
    await pollUntil(() => holder.lease?.state(id) !== undefined && witness.lease?.state(id) !== undefined, { timeoutMs: 10_000, what: 'the holder and the witness in the lease' })
    expect(seen[holderIndex]).toEqual([])

    await a.stop()
    await pollUntil(() => holder.vms.get(id)?.state === 'running', { timeoutMs: 15_000, what: 'the VM to run on its holder' })
    expect(seen[holderIndex]).toEqual([`prepare ${id} promotion`])
    expect(seen[0]).toEqual([`prepare ${id} create`])
  }, 90_000)
})
