import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeHostAdvert, encodeSuspicion, generateClusterKey, generateIdentity, type ClusterViewEvent, type MeshNode } from '../src/index.js'
import { pollUntil } from '@meshvirt/testkit/poll'
import { capacity, TestCluster } from './helpers.js'

const N = 5

describe('a cluster of 5 real nodes over loopback', () => {
  const cluster = new TestCluster()
  afterEach(async () => { await cluster.stopAll() })

  async function startFive (): Promise<MeshNode[]> {
    for (let i = 0; i < N; i++) await cluster.start()
    const nodes = [...cluster.nodes]
    await pollUntil(() => nodes.every((n) => n.view.hosts().filter((h) => h.liveness === 'alive').length === N), { timeoutMs: 10_000, intervalMs: 20, what: 'every view to hold 5 alive hosts' })
    return nodes
  }

  it('every host sees every host', async () => {
    const nodes = await startFive()
    const ids = nodes.map((n) => n.hostId).sort()
    for (const n of nodes) expect(n.view.hosts().map((h) => h.hostId).sort()).toEqual(ids)
    for (const n of nodes) expect(n.view.get(n.hostId)?.self).toBe(true)
  })

  it('a capacity change reaches every view within one heartbeat', async () => {
    const nodes = await startFive()
    const changer = nodes[2] as MeshNode
    const seenAt = new Map<string, number>()
    for (const n of nodes) {
      n.view.subscribe((e) => {
        if (e.type === 'updated' && e.host.hostId === changer.hostId && e.host.advert.capacity.allocated.vcpus === 6) seenAt.set(n.hostId, Date.now())
      })
    }
    const changedAt = Date.now()
    changer.updateAdvert({ capacity: capacity(8, 6) })
    await pollUntil(() => seenAt.size === N, { timeoutMs: 10_000, intervalMs: 20, what: 'every view to hold the new allocation' })
    const slowest = Math.max(...seenAt.values()) - changedAt
    expect(slowest).toBeLessThanOrEqual(changer.timing.heartbeatIntervalMs)
    for (const n of nodes) expect(n.view.get(changer.hostId)?.advert.capacity.allocated.vcpus).toBe(6)
  })

  it('a stopped host becomes suspect, then dead, at every other host', async () => {
    const nodes = await startFive()
    const victim = nodes[4] as MeshNode
    const others = nodes.slice(0, 4)
    const seen = others.map(() => [] as string[])
    others.forEach((n, i) => n.view.subscribe((e: ClusterViewEvent) => { if (e.host.hostId === victim.hostId) seen[i]?.push(e.type) }))
    await victim.stop()
    await pollUntil(() => others.every((n) => n.view.get(victim.hostId)?.liveness === 'dead'), { timeoutMs: 10_000, intervalMs: 20, what: 'the victim to be dead everywhere' })
    for (const events of seen) expect(events).toEqual(['suspect', 'dead'])
    // Its direct peers saw the connection drop, probed it and told the others.
    expect(others.some((n) => n.stats().suspicions.published > 0)).toBe(true)
  })

  it('a host restarted with the same identity comes back alive with a new incarnation', async () => {
    const identity = await generateIdentity()
    await cluster.start()
    const returning = await cluster.start(identity)
    for (let i = 2; i < N; i++) await cluster.start()
    const nodes = cluster.running()
    await pollUntil(() => nodes.every((n) => n.view.liveCount() === N), { timeoutMs: 10_000, intervalMs: 20, what: 'all five alive' })
    const firstIncarnation = returning.incarnation
    await returning.stop()
    const others = cluster.running()
    await pollUntil(() => others.every((n) => n.view.get(identity.hostId)?.liveness === 'dead'), { timeoutMs: 10_000, intervalMs: 20, what: 'the stopped host to be dead' })
    const revived = others.map(() => false)
    others.forEach((n, i) => n.view.subscribe((e) => { if (e.type === 'alive' && e.host.hostId === identity.hostId && e.restarted) revived[i] = true }))

    const again = await cluster.start(identity, { bootstrap: [others[0]?.multiaddrs()[0] as string] })
    expect(again.hostId).toBe(identity.hostId)
    expect(again.incarnation).toBeGreaterThan(firstIncarnation)
    await pollUntil(() => others.every((n) => n.view.get(identity.hostId)?.liveness === 'alive'), { timeoutMs: 10_000, intervalMs: 20, what: 'the restarted host to be alive everywhere' })
    for (const n of others) expect(n.view.get(identity.hostId)?.advert.incarnation).toBe(again.incarnation)
    expect(revived).toEqual(others.map(() => true))
  })

  it('a node with another cluster key cannot join', async () => {
    const nodes = await startFive()
    const stranger = await cluster.start(undefined, { clusterKey: generateClusterKey(), bootstrap: [nodes[0]?.multiaddrs()[0] as string] })
    // Dial it ourselves too, so the refusal is observed rather than assumed.
    await expect(stranger.libp2p.dial(nodes[1]?.libp2p.getMultiaddrs()[0] as never, { signal: AbortSignal.timeout(1500) })).rejects.toThrow()
    await expect(nodes[1]?.libp2p.dial(stranger.libp2p.getMultiaddrs()[0] as never, { signal: AbortSignal.timeout(1500) })).rejects.toThrow()
    expect(stranger.libp2p.getConnections()).toHaveLength(0)
    expect(stranger.view.hosts().map((h) => h.hostId)).toEqual([stranger.hostId])
    for (const n of nodes) expect(n.view.get(stranger.hostId)).toBeUndefined()
  })

  it('refuses forged adverts and random bytes, counts them, and keeps running', async () => {
    const nodes = await startFive()
    const [forger, victim] = nodes as [MeshNode, MeshNode]
    const others = nodes.slice(1)
    const forged = encodeHostAdvert({ ...victim.advert(), seq: victim.advert().seq + 1000, capacity: capacity(1024) })
    await forger.libp2p.services.pubsub.publish(forger.topic, forged)
    await forger.libp2p.services.pubsub.publish(forger.topic, randomBytes(300))
    await forger.libp2p.services.pubsub.publish(forger.topic, Uint8Array.from([0x0a, 0xff, 0xff]))
    // A suspicion notice posing as another reporter (one host must not count as many).
    const forgedNotice = encodeSuspicion({ hostId: victim.hostId, incarnation: victim.incarnation, seq: 1, reporterId: (nodes[3] as MeshNode).hostId, sentAtMs: Date.now() })
    await forger.libp2p.services.pubsub.publish(forger.livenessTopic, forgedNotice)
    const rejected = (n: MeshNode): number => Object.values(n.stats().adverts.rejected).reduce((a, b) => a + b, 0)
    // Direct neighbours reject (and so never forward); at least one neighbour sees all three.
    await pollUntil(() => others.some((n) => n.stats().adverts.rejected['signer-mismatch'] >= 1 && rejected(n) >= 3), { timeoutMs: 10_000, intervalMs: 20, what: 'the bad messages to be rejected' })
    await pollUntil(() => others.some((n) => n.stats().suspicions.rejected['signer-mismatch'] >= 1), { timeoutMs: 10_000, intervalMs: 20, what: 'the forged notice to be rejected' })
    for (const n of others) expect(n.view.get(victim.hostId)?.advert.capacity.total.vcpus).toBe(8)
    for (const n of others) expect(n.view.get(victim.hostId)?.liveness).toBe('alive')
    // Still running: a real change still propagates.
    victim.updateAdvert({ capacity: capacity(16) })
    await pollUntil(() => nodes.every((n) => n.view.get(victim.hostId)?.advert.capacity.total.vcpus === 16), { timeoutMs: 10_000, intervalMs: 20, what: 'a valid change after the bad ones' })
  })
})
