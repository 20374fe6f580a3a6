import { afterEach, describe, expect, it } from 'vitest'
import { nameAuthorities, type RunningAgent } from '@meshvirt/agent'
import { pollUntil } from '@meshvirt/testkit'
import { simSpec, startInProcessCluster, type InProcessCluster } from '../support/in-process-cluster.js'
import { vmSpecFromWire } from '@meshvirt/agent'

/** A VM name whose first authority among `hosts` is `first` and second is `second`. */
function nameRankedAt (first: string, second: string, hosts: string[]): string {
  for (let i = 0; ; i++) {
    const name = `db-${i}`
    const [a, b] = nameAuthorities(name, hosts)
    if (a === first && b === second) return name
  }
}

// Issue 22, finding 1: a name is claimed and bound at its first two authorities, so the death of
// the first — with the VM on it — leaves the claim known: nothing can take the name or place the VM
// a second time while that host is away.
describe('a VM name is held at two authorities', () => {
  let cluster: InProcessCluster | undefined
  afterEach(async () => { await cluster?.stop(); cluster = undefined })

  it('the first authority dies with the VM on it: another key is refused the name, a retry of the same key is not placed again, and the returning host still owns it', async () => {
    cluster = await startInProcessCluster([{ vcpus: 8, memoryMiB: 4096 }, { vcpus: 8, memoryMiB: 4096 }, { vcpus: 8, memoryMiB: 4096 }, { vcpus: 8, memoryMiB: 4096 }])
    const [a, b, , d] = cluster.agents as [RunningAgent, RunningAgent, RunningAgent, RunningAgent]
    const ids = cluster.agents.map((x) => x.hostId)
    // The VM runs on its first authority (d); b is its second; a brokers.
    const name = nameRankedAt(d.hostId, b.hostId, ids)
    const made = await a.broker.create(vmSpecFromWire({ ...simSpec(name, 256), host: d.hostId }), 'key-1')
    const id = made.vm.summary?.id as string
    expect(made.vm.summary?.owner).toBe(d.hostId)

    await d.stop()
    await pollUntil(() => a.mesh.view.get(d.hostId)?.liveness === 'dead', { timeoutMs: 20_000, what: 'd declared dead' })
    // d's VM is gone from the live adverts: only the name's second authority still knows it.
    await expect(a.broker.create(vmSpecFromWire(simSpec(name, 256)), 'key-2')).rejects.toMatchObject({ code: 'NAME_TAKEN' })
    await expect(a.broker.create(vmSpecFromWire(simSpec(name, 256)), 'key-1')).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringMatching(/never placed a second time/) })
    for (const x of [a, b, cluster.agents[2] as RunningAgent]) expect(x.vms.get(id)).toBeUndefined()

    // d comes back with its VM; the same key now answers with it, existed.
    const back = await cluster.restart(3)
    await pollUntil(() => a.mesh.view.get(back.hostId)?.liveness === 'alive' && a.mesh.view.get(back.hostId)?.advert.vms.some((v) => v.id === id), { timeoutMs: 20_000, what: 'd back with its VM' })
    const again = await a.broker.create(vmSpecFromWire(simSpec(name, 256)), 'key-1')
    expect(again).toMatchObject({ existed: true, vm: { summary: { id, owner: d.hostId } } })
  }, 90_000)
})
