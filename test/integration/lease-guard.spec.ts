import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { ControlClient, type RunningAgent } from '@meshvirt/agent'
import { pb } from '@meshvirt/proto'
import { simSpec, startInProcessCluster, type InProcessCluster } from '../support/in-process-cluster.js'
import { pollUntil } from '@meshvirt/testkit'
import { vmSpecFromWire } from '@meshvirt/agent'

const MIB = 2 ** 20
const LEASE = '/meshvirt/lease/1.0.0'
const R = pb.LeaseRefusal

/** Sends one batch of lease renewals from `from` to `to` (the real wire), returns each answer's refusal ('' when granted). */
async function renew (from: RunningAgent, to: string, renewals: Array<{ vmId: string, epoch: number, members: string[], round: number }>): Promise<number[]> {
  const bytes = pb.LeaseRequest.encode({ messages: renewals.map((r) => ({ renew: { ...r, leaseMs: 2000 } })) }).finish()
  const res = pb.LeaseResponse.decode(await from.mesh.request(to, LEASE, bytes, { timeoutMs: 10_000 }))
  if (res.error != null) throw new Error(`${res.error.code}: ${res.error.message}`)
  return res.messages.map((m) => m.refused != null ? (m.refused.reason ?? 0) : 0)
}

function leaseRows (cluster: InProcessCluster, index: number): number {
  const db = new Database(join(cluster.dir, `h${index}`, 'state.db'), { readonly: true, fileMustExist: true })
  try {
    return (db.prepare('SELECT count(*) AS n FROM leases').get() as { n: number }).n
  } finally {
    db.close()
  }
}

// Issue 22, findings 2 and 5, with real agents in one process (simulated hypervisor, real libp2p and
// the real lease protocol): a cluster host outside a VM's replica group sends forged lease renewals.
describe('lease messages only from who may hold the role (issue 22)', () => {
  let cluster: InProcessCluster | undefined
  afterEach(async () => { await cluster?.stop(); cluster = undefined })

  const inspect = async (a: RunningAgent, id: string): Promise<InstanceType<typeof pb.VmInfo>> =>
    (await new ControlClient(a.controlSocket).call({ inspectVm: { vm: { id } } })).vm as InstanceType<typeof pb.VmInfo>

  it('a forged renewal at epoch + 1 from a non-member is refused and the guest keeps running; 5,000 renewals for unknown VMs leave no state', async () => {
    cluster = await startInProcessCluster(['a', 'b', 'c', 'd'].map((site) => ({ vcpus: 8, memoryMiB: 4096, labels: { site } })))
    const agents = cluster.agents
    const [a] = agents as [RunningAgent]
    const spec = { ...simSpec('guarded', 256), resources: { vcpus: 1, memoryBytes: 256 * MIB, diskBytes: 16 * MIB }, host: a.hostId, replicas: 1, rpoMs: 1000, spreadBy: 'site' }
    const id = (await a.broker.create(vmSpecFromWire(spec), 'guarded-1')).vm.summary?.id as string
    const info = await pollUntil(async () => {
      const i = await inspect(a, id)
      return i.lease?.role === 'owner' && i.lease.running === true && (i.lease.members ?? []).length === 3 && i.replicas.some((r) => r.state === 'in-sync') ? i : undefined
    }, { timeoutMs: 30_000, what: 'the owner to hold its lease with holder and witness' })
    const members = info.lease?.members ?? []
    const others = agents.filter((x) => members.includes(x.hostId) && x !== a)
    const intruder = agents.find((x) => !members.includes(x.hostId)) as RunningAgent
    expect(others).toHaveLength(2)
    await pollUntil(() => others.every((m) => m.lease?.state(id)?.owner === a.hostId), { timeoutMs: 10_000, what: 'holder and witness to take part in the lease' })
    const epoch = a.vms.get(id)?.epoch as number
    expect(epoch).toBe(1)
    const historyBefore = (await inspect(a, id)).leaseHistory.length

    // The forged renewal: the intruder names itself owner at epoch + 1 (the sender is authenticated,
    // so it cannot pose as the owner). Sent to every member and to the owner, again and again.
    const forged = { vmId: id, epoch: epoch + 1, members: [intruder.hostId, ...members.filter((m) => m !== a.hostId)], round: 1 }
    const until = Date.now() + 3000 // longer than a lease (2 s here): a guest stopped by it would show
    let rounds = 0
    while (Date.now() < until) {
      for (const to of members) {
        expect(await renew(intruder, to, [{ ...forged, round: ++rounds }])).toEqual([R.LEASE_REFUSAL_NOT_MEMBER])
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    // Nothing the forgeries did: no newer owner believed anywhere, no demotion, the guest still runs
    // at epoch 1. (A lease that lapses under this machine's load fences and resumes at the same
    // epoch; that is told apart by its reason, and the guest must be running again.)
    const during = (await inspect(a, id)).leaseHistory.slice(historyBefore)
    console.log(`owner's lease history during the forgeries: ${JSON.stringify(during.map((h) => `${h.type}@${String(h.epoch)}: ${h.detail ?? ''}`))}`)
    expect(during.filter((h) => h.type === 'demoted' || /newer owner/.test(h.detail ?? '') || Number(h.epoch) !== 1)).toEqual([])
    await pollUntil(() => a.lease?.state(id)?.running === true && a.vms.get(id)?.state === 'running', { timeoutMs: 10_000, what: 'the guest to run under its lease' })
    expect(a.vms.get(id)).toMatchObject({ state: 'running', epoch: 1 })
    expect(a.lease?.state(id)).toMatchObject({ role: 'owner', epoch: 1, running: true })
    for (const m of others) expect(m.lease?.state(id)).toMatchObject({ epoch: 1, owner: a.hostId })
    console.log(`${rounds} forged renewals at epoch ${epoch + 1} from a non-member: all refused (not-member); no newer owner believed anywhere, still epoch 1`)

    // 5,000 renewals for VMs that do not exist, at a member and at the intruder's neighbour.
    const target = others[0] as RunningAgent
    const index = agents.indexOf(target)
    const rowsBefore = leaseRows(cluster, index)
    const statesBefore = target.lease?.states().length
    const t0 = performance.now()
    const answers: number[] = []
    for (let b = 0; b < 5; b++) {
      answers.push(...await renew(intruder, target.hostId, Array.from({ length: 1000 }, (_, i) => ({ vmId: `vm-ghost-${b * 1000 + i}`, epoch: 1 + (i % 5), members: [intruder.hostId, target.hostId], round: i }))))
    }
    const ms = performance.now() - t0
    console.log(`5,000 renewals for unknown VMs (5 batches of 1,000) answered in ${ms.toFixed(0)} ms; rows in the leases table before/after: ${rowsBefore}/${leaseRows(cluster, index)}`)
    expect(answers).toHaveLength(5000)
    expect(new Set(answers)).toEqual(new Set([R.LEASE_REFUSAL_UNKNOWN_VM]))
    expect(leaseRows(cluster, index)).toBe(rowsBefore)
    expect(target.lease?.states().length).toBe(statesBefore)
    expect(target.lease?.states().some((s) => s.vmId.startsWith('vm-ghost-'))).toBe(false)
    expect(target.lease?.refusals.get('unknown-vm')).toBe(5000)
    // Measured 0.8 s at load average ~10 and 6.6 s at 35 on this 2-core machine; the bound is for a
    // loaded CI runner: what matters above is that nothing was kept.
    expect(ms).toBeLessThan(20_000)
    const metrics = await target.monitoring.metrics.render()
    expect(metrics).toMatch(/meshvirt_lease_refusals_total\{reason="unknown-vm"\} 5000/)
  }, 90_000)
})
