import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Monitoring } from '../src/monitor/attach-monitoring.js'
import type { ClusterEvent } from '../src/monitor/cluster-event.js'
import { signEvent } from '../src/monitor/signed-event.js'
import { simVmSpec, startSimCluster, type SimCluster } from '@meshvirt/testkit'
import { loadOrCreateIdentity } from '../src/store/identity-store.js'
import { clusterPerTest } from './monitor-harness.js'
import { pollUntil } from '@meshvirt/testkit/poll'
import { vmSpecFromWire } from '../src/vm/vm-spec-codec.js'

/** Sum of the samples of `series` (exact name and labels) in Prometheus text; 0 when absent. */
function sample (text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}

describe('monitoring across 3 in-process agents', () => {
  const clusters = clusterPerTest()

  async function startMonitoredCluster (): Promise<{ cluster: SimCluster, monitors: Monitoring[] }> {
    const cluster = clusters.track(await startSimCluster([{ vcpus: 4, memoryMiB: 1024 }, { vcpus: 4, memoryMiB: 1024 }, { vcpus: 4, memoryMiB: 1024 }]))
    return { cluster, monitors: await clusters.monitor(cluster) }
  }

  const scrape = async (m: Monitoring): Promise<string> => {
    const res = await fetch(m.metricsUrl as string, { headers: { authorization: `Bearer ${m.token as string}` } })
    expect(res.status).toBe(200)
    return await res.text()
  }
  const events = (m: Monitoring): ClusterEvent[] => m.events.ring.list({ limit: 10_000 }).events.map((r) => r.event)

  it('counts a created VM once cluster-wide, and every agent read on sees every host\'s events, in order', async () => {
    const { cluster: c, monitors: mons } = await startMonitoredCluster()
    const ids = c.agents.map((a) => a.hostId)

    // Nobody reads the events yet: each host has announced itself to its own ring only.
    await pollUntil(() => mons.every((m, i) => events(m).some((e) => e.kind === 'host-joined' && e.hostId === ids[i])), { timeoutMs: 20_000, intervalMs: 100, what: 'host-joined on each agent' })
    for (const m of mons) expect([m.events.counters.received, m.events.isFollowing, new Set(events(m).map((e) => e.hostId)).size]).toEqual([0, false, 1])
    // Read on all three: the announcements already made are pulled, what follows is gossiped.
    await Promise.all(mons.map(async (m) => { await m.events.follow() }))
    for (const m of mons) {
      await pollUntil(() => ids.every((id) => events(m).some((e) => e.kind === 'host-joined' && e.hostId === id)), { timeoutMs: 20_000, intervalMs: 100, what: 'host-joined of all 3 hosts on every agent' })
    }

    const { vm } = await (c.agents[0]?.broker.create(vmSpecFromWire(simVmSpec('mon-web')), 'mon-key-1'))!
    const vmId = vm.summary?.id as string
    const owner = vm.summary?.owner as string

    // Scrape all three: the VM appears on its owner only; the running count sums to 1.
    const texts = await pollUntil(async () => {
      const all = await Promise.all(mons.map(scrape))
      return all.reduce((n, t) => n + sample(t, 'meshvirt_vms{state="running"}'), 0) === 1 ? all : undefined
    }, { timeoutMs: 20_000, intervalMs: 100, what: 'the VM running in the metrics' })
    const holders = texts.map((t, i) => ({ host: ids[i], n: t.split('\n').filter((l) => l.startsWith('meshvirt_vm_info{') && l.includes(`vm="${vmId}"`)).length }))
    expect(holders.filter((h) => h.n > 0)).toEqual([{ host: owner, n: 1 }])
    // Usage measured on the owner (the simulated hypervisor reports the configured memory as RSS).
    expect(sample(texts[ids.indexOf(owner)] as string, `meshvirt_vm_rss_bytes{vm="${vmId}",name="mon-web"}`)).toBe(128 * 2 ** 20)
    expect(sample(texts[0] as string, 'meshvirt_placements_total{outcome="placed"}')).toBe(1)
    expect(sample(texts[0] as string, 'meshvirt_placement_commit_seconds_count')).toBe(1)
    expect(sample(texts[1] as string, 'meshvirt_cluster_hosts{liveness="alive"}')).toBe(3)
    const allocated = texts.reduce((n, t) => n + sample(t, 'meshvirt_host_memory_bytes{kind="allocated"}'), 0)
    expect(allocated).toBe(128 * 2 ** 20)

    // Stop and delete it on its owner: every agent gets created → started → stopped → deleted, from the owner.
    const ownerAgent = c.agents.find((a) => a.hostId === owner)!
    await pollUntil(() => mons.every((m) => events(m).some((e) => e.kind === 'vm-started' && e.vmId === vmId)), { timeoutMs: 20_000, intervalMs: 100, what: 'vm-started everywhere' })
    await ownerAgent.vms.stop(vmId)
    await ownerAgent.vms.delete(vmId)
    const wanted = ['vm-created', 'vm-started', 'vm-stopped', 'vm-deleted']
    for (const m of mons) {
      const seen = await pollUntil(() => {
        const mine = events(m).filter((e) => e.vmId === vmId)
        return mine.length >= wanted.length ? mine : undefined
      }, { timeoutMs: 20_000, intervalMs: 100, what: 'the VM\'s four events' })
      expect(seen.map((e) => e.kind)).toEqual(wanted)
      expect(new Set(seen.map((e) => e.hostId))).toEqual(new Set([owner]))
      expect(seen.map((e) => e.vmName)).toEqual(['mon-web', 'mon-web', 'mon-web', 'mon-web'])
      // The emitter's numbering has no holes and no repeats on any receiver.
      const stream = events(m).filter((e) => e.hostId === owner).map((e) => e.seq)
      expect(stream).toEqual(stream.map((_, i) => i + 1))
    }
    for (const t of await Promise.all(mons.map(scrape))) expect(t.split('\n').filter((l) => l.includes(vmId))).toEqual([])
  })

  it('refuses an event relayed under another host\'s name', async () => {
    const { cluster: c, monitors: mons } = await startMonitoredCluster()
    const [a0, a1] = c.agents
    await Promise.all([mons[0]!.events.follow(), mons[2]!.events.follow()])
    // Host 1 signs (its own key) an event claiming to come from host 0, and gossips it.
    const { identity } = await loadOrCreateIdentity(join(c.dir, 'h1'))
    const forged = await signEvent(identity.privateKey, { hostId: a0!.hostId, incarnation: a0!.incarnation, seq: 99, timeMs: Date.now(), kind: 'vm-crashed', vmId: 'vm-x', vmName: 'fake', vmEpoch: 1, subjectHostId: '', message: '' })
    await pollUntil(() => a1!.mesh.libp2p.services.pubsub.getSubscribers(mons[1]!.events.topic).length >= 2, { timeoutMs: 20_000, intervalMs: 100, what: 'event topic subscribers' })
    await a1!.mesh.libp2p.services.pubsub.publish(mons[1]!.events.topic, forged)
    await pollUntil(() => mons[0]!.events.counters.rejected['signer-mismatch'] + mons[2]!.events.counters.rejected['signer-mismatch'] >= 1, { timeoutMs: 20_000, intervalMs: 100, what: 'a rejection' })
    for (const m of mons) expect(events(m).some((e) => e.vmName === 'fake')).toBe(false)
  })

  it('reports a host that stops: its own goodbye, then its death, told by one witness', async () => {
    const { cluster: c, monitors: mons } = await startMonitoredCluster()
    const gone = c.agents[2]!
    await Promise.all(mons.slice(0, 2).map(async (m) => { await m.events.follow() }))
    await mons[2]!.stop()
    await gone.stop()
    for (const m of mons.slice(0, 2)) {
      await pollUntil(() => events(m).some((e) => e.kind === 'host-stopping' && e.hostId === gone.hostId), { timeoutMs: 20_000, intervalMs: 100, what: 'host-stopping of h2' })
      const dead = await pollUntil(() => events(m).find((e) => e.kind === 'host-dead' && e.subjectHostId === gone.hostId), { timeoutMs: 30_000, intervalMs: 100, what: 'host-dead of h2' })
      expect([c.agents[0]!.hostId, c.agents[1]!.hostId]).toContain(dead.hostId)
    }
    const reporters = mons.slice(0, 2).map((m) => events(m).filter((e) => e.kind === 'host-dead').map((e) => e.hostId))
    expect(reporters[0]).toEqual(reporters[1])
    expect(reporters[0]).toHaveLength(1)
  })
})
