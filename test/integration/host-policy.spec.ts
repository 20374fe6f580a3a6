import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ControlError } from '@meshvirt/agent'
import { simSpec, startInProcessCluster, type InProcessCluster } from '../support/in-process-cluster.js'
import { meshvirt, pollUntil } from '@meshvirt/testkit'
import { vmSpecFromWire } from '@meshvirt/agent'

const RUNS = 20
const HOSTS = 10
const PER_BROKER = 10

interface Outcome { ok: boolean, owner?: string, code?: string, message?: string }

/** A create as a client makes it: an UNAVAILABLE answer (a commit not confirmed under load) is retried with the same key. */
async function createMember (cluster: InProcessCluster, broker: number, group: string, i: number): Promise<Outcome> {
  for (let attempt = 1; ; attempt++) {
    try {
      const r = await cluster.agents[broker]!.broker.create(vmSpecFromWire({ ...simSpec(`${group}-${broker}-${i}`), group, antiAffinity: [group] }), `${group}/${broker}/${i}`)
      return { ok: true, owner: r.vm.summary?.owner ?? '' }
    } catch (err) {
      const code = (err as ControlError).code
      if ((code === 'UNAVAILABLE' || code === 'IN_PROGRESS') && attempt < 5) continue
      return { ok: false, code, message: (err as Error).message }
    }
  }
}

describe('policies at the host: Reserve checks anti-affinity against the host\'s own ledger', () => {
  let cluster: InProcessCluster
  beforeAll(async () => {
    // Room for far more VMs than the runs make: only the group rule limits where members go.
    cluster = await startInProcessCluster(Array.from({ length: HOSTS }, () => ({ vcpus: 64, memoryMiB: 64 * 1024 })), { timing: 'lan' })
  }, 120_000)
  afterAll(async () => { await cluster?.stop() })

  it(`2 brokers × ${PER_BROKER} concurrent creates of one anti-affinity group on ${HOSTS} hosts → ${HOSTS} distinct hosts, every run of ${RUNS}`, async () => {
    for (let run = 0; run < RUNS; run++) {
      const group = `ha${run}`
      // Ten hosts can take ten members only if both brokers see ten live hosts (ten in-process
      // agents on a loaded machine miss heartbeats now and then).
      await pollUntil(() => [0, 1].every((b) => cluster.agents[b]!.mesh.view.hosts().filter((h) => h.liveness === 'alive').length === HOSTS),
        { timeoutMs: 30_000, what: `run ${run}: both brokers see ${HOSTS} live hosts` })
      const results = await Promise.all([0, 1].flatMap((broker) => Array.from({ length: PER_BROKER }, async (_, i) => await createMember(cluster, broker, group, i))))
      const placed = results.filter((r) => r.ok)
      const refused = results.filter((r) => !r.ok)
      const owners = placed.map((r) => r.owner)
      // Every host takes exactly one member; the others are refused, clearly, for the rule.
      expect(new Set(owners).size, `run ${run}: owners ${owners.map((o) => o?.slice(-6)).join(',')}`).toBe(owners.length)
      expect(placed.length, `run ${run}: ${refused.map((r) => `${r.code}: ${r.message}`).slice(0, 3).join(' | ')}`).toBe(HOSTS)
      for (const r of refused) {
        expect(r.code).toBe('NO_CAPACITY')
        expect(r.message).toMatch(/group ha\d+/)
      }
      // The hosts' own records agree: one member of the group each, no reservation left over.
      for (const a of cluster.agents) {
        expect(a.vms.list().filter((v) => v.group === group).length, `run ${run}: host ${a.hostId.slice(-6)}`).toBe(1)
        expect(a.ledger.audit()).toEqual([])
      }
    }
  }, 600_000)
})

describe('a VM the driver refuses is refused at Reserve', () => {
  let cluster: InProcessCluster
  beforeAll(async () => {
    // 2 CPUs per host; ledgers allow 4 × 2 = 8 vCPUs (the cpu overcommit), the driver only 2 per VM.
    cluster = await startInProcessCluster([{ vcpus: 2, memoryMiB: 4096 }, { vcpus: 2, memoryMiB: 4096 }])
  }, 60_000)
  afterAll(async () => { await cluster?.stop() })

  it('more vCPUs than any host has: refused with the driver\'s reason, nothing placed, nothing held', async () => {
    const err = await cluster.agents[0]!.broker.create(vmSpecFromWire(simSpec('too-wide', 128, 4)), 'too-wide-1').catch((e: unknown) => e as ControlError)
    expect(err).toMatchObject({ code: 'DRIVER_REFUSED' })
    expect((err as Error).message).toMatch(/4 vCPUs exceed this host's 2 CPUs/)
    for (const a of cluster.agents) {
      expect(a.vms.list()).toEqual([])
      expect(a.ledger.capacity()).toMatchObject({ allocated: { vcpus: 0, memoryBytes: 0 }, reservations: { vcpus: 0, memoryBytes: 0 } })
    }
    // The name was released: a VM that fits takes it.
    const ok = await cluster.agents[1]!.broker.create(vmSpecFromWire(simSpec('too-wide', 128, 2)), 'too-wide-2')
    expect(ok.vm.summary?.state).toBeDefined()
  }, 60_000)

  it('hosts too busy to check a VM in time are asked again after a back-off: placed, not refused for its spec; the broker halves its placement limit', async () => {
    // Each host's first check hangs (a loaded host): Reserve answers OVERLOADED after 5 s, not DRIVER.
    const restore = cluster.agents.map((a) => {
      const hv = a.hypervisor
      const original = hv.checkSpec.bind(hv)
      let calls = 0
      hv.checkSpec = async (spec) => { if (calls++ === 0) await new Promise<void>(() => {}); await original(spec) }
      return () => { hv.checkSpec = original }
    })
    try {
      const broker = cluster.agents[0]!.broker
      const before = broker.stats.refusedBy.overloaded ?? 0
      const driverBefore = broker.stats.refusedBy.driver ?? 0
      const limitBefore = broker.concurrency.limit
      const placed = await broker.create(vmSpecFromWire(simSpec('busy-then-free', 128, 1)), 'busy-then-free-1')
      expect(placed.vm.summary?.name).toBe('busy-then-free')
      expect((broker.stats.refusedBy.overloaded ?? 0) - before).toBe(2)
      expect(broker.stats.refusedBy.driver ?? 0).toBe(driverBefore)
      // Back-pressure: the placements after it negotiate fewer at once until quiet ones grow it back.
      expect(limitBefore).toBeGreaterThan(1)
      expect(broker.concurrency).toMatchObject({ limit: Math.floor(limitBefore / 2), running: 0, queued: 0 })
    } finally {
      for (const r of restore) r()
    }
  }, 60_000)

  it('the CLI exits non-zero with the reason, also with --no-wait', async () => {
    const socket = cluster.agents[0]!.controlSocket
    const dataDir = socket.replace(/\/[^/]+$/, '')
    const r = await meshvirt(['vm', 'create', '--name', 'cli-wide', '--vcpus', '3', '--memory', '128M', '--kernel', '/sim/vmlinux', '--no-wait', '--data-dir', dataDir])
    expect(r.exitCode, r.stdout).not.toBe(0)
    expect(r.stderr).toMatch(/3 vCPUs exceed this host's 2 CPUs/)
    for (const a of cluster.agents) expect(a.vms.list().map((v) => v.name)).not.toContain('cli-wide')
  }, 60_000)
})

describe('--spread-by for a plain VM: anti-affinity per failure domain', () => {
  let cluster: InProcessCluster
  beforeAll(async () => {
    cluster = await startInProcessCluster(['a', 'a', 'b', 'b'].map((zone) => ({ vcpus: 8, memoryMiB: 4096, labels: { zone } })))
  }, 60_000)
  afterAll(async () => { await cluster?.stop() })

  it('members go to distinct zones; a third has none left and is refused saying why', async () => {
    const zoneOf = (hostId: string): string | undefined => cluster.agents.find((a) => a.hostId === hostId)?.mesh.view.get(hostId)?.advert.labels.zone
    const zones: string[] = []
    for (const i of [1, 2]) {
      // Alternate brokers; each create waits until every view shows the previous member (the
      // domain rule is the broker's, against gossip: see README).
      const r = await cluster.agents[i % 2]!.broker.create(vmSpecFromWire({ ...simSpec(`zoned-${i}`), group: 'zoned', antiAffinity: ['zoned'], spreadBy: 'zone' }), `zoned-${i}`)
      zones.push(zoneOf(r.vm.summary?.owner as string) as string)
      await pollUntil(() => cluster.agents.every((a) => a.mesh.view.hosts().filter((h) => h.advert.vms.some((v) => v.group === 'zoned')).length === i),
        { timeoutMs: 10_000, what: `every view shows ${i} member(s)` })
    }
    expect(zones.sort()).toEqual(['a', 'b'])
    const third = await cluster.agents[3]!.broker.create(vmSpecFromWire({ ...simSpec('zoned-3'), group: 'zoned', antiAffinity: ['zoned'], spreadBy: 'zone' }), 'zoned-3').catch((e: unknown) => e as ControlError)
    expect(third).toMatchObject({ code: 'NO_CAPACITY' })
    expect((third as Error).message).toMatch(/4 run a VM of group zoned/)
  }, 60_000)
})
