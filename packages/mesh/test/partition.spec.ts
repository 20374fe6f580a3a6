import { afterEach, describe, expect, it } from 'vitest'
import { LOCAL_TEST_TIMING, type MeshNode } from '../src/index.js'
import { pollUntil } from '@meshvirt/testkit/poll'
import { TestCluster } from './helpers.js'

// Two halves of three hosts, each host content with two connections: once cut apart, every host
// fills its quota from its own half and never runs short enough to go back to its bootstrap
// address. Only the reconnect of departed hosts can bring the halves together again.
const TIMING = { ...LOCAL_TEST_TIMING, targetPeers: 2, reconnectIntervalMs: 500 }
const SIDES = [0, 0, 0, 1, 1, 1]

describe('a partition of real nodes over loopback', () => {
  const cluster = new TestCluster()
  afterEach(async () => { await cluster.stopAll() })

  it('{0,1,2} | {3,4,5}: each half declares the other dead; healed, every view holds all six alive', { timeout: 60_000 }, async () => {
    let cut = false
    const side = new Map<string, number>()
    const nodes: MeshNode[] = []
    for (const [i, s] of SIDES.entries()) {
      const node = await cluster.start(undefined, { timing: TIMING, refuse: (id) => cut && side.get(id) !== SIDES[i] })
      side.set(node.hostId, s)
      nodes.push(node)
    }
    const aliveIn = (n: MeshNode): number => n.view.hosts().filter((h) => h.liveness === 'alive').length
    const opposite = (n: MeshNode): MeshNode[] => nodes.filter((m) => side.get(m.hostId) !== side.get(n.hostId))
    await pollUntil(() => nodes.every((n) => aliveIn(n) === 6), { timeoutMs: 15_000, intervalMs: 50, what: 'every view to hold six alive hosts' })

    cut = true
    await Promise.all(nodes.flatMap((n) => opposite(n).map(async (m) => { await n.libp2p.hangUp(m.peerId) })))
    await pollUntil(() => nodes.every((n) => opposite(n).every((m) => n.view.get(m.hostId)?.liveness === 'dead')),
      { timeoutMs: 20_000, intervalMs: 50, what: 'each half to declare the other dead' })
    for (const n of nodes) {
      expect(aliveIn(n)).toBe(3)
      expect(n.libp2p.getConnections().filter((c) => side.get(c.remotePeer.toString()) !== side.get(n.hostId))).toEqual([])
    }

    cut = false
    const healedAt = Date.now()
    await pollUntil(() => nodes.every((n) => aliveIn(n) === 6), { timeoutMs: 15_000, intervalMs: 50, what: 'every view to hold six alive hosts after the heal' })
    const healMs = Date.now() - healedAt
    console.log(`partition healed: every view whole ${healMs} ms after the cut was lifted (reconnect every ${TIMING.reconnectIntervalMs} ms)`)
    const answered = nodes.reduce((sum, n) => sum + (n.stats().reconnects?.answered ?? 0), 0)
    expect(answered).toBeGreaterThan(0)
  })

  it('one host cut off and back: it pulls the view once, the others only hear its advert', { timeout: 60_000 }, async () => {
    let cut = false
    const nodes: MeshNode[] = []
    for (let i = 0; i < 6; i++) nodes.push(await cluster.start(undefined, { timing: TIMING, refuse: (id) => cut && (i === 5 || id === nodes[5]?.hostId) }))
    const [lone, others] = [nodes[5] as MeshNode, nodes.slice(0, 5)]
    const aliveIn = (n: MeshNode): number => n.view.hosts().filter((h) => h.liveness === 'alive').length
    await pollUntil(() => nodes.every((n) => aliveIn(n) === 6), { timeoutMs: 15_000, intervalMs: 50, what: 'every view to hold six alive hosts' })
    const pulls = (n: MeshNode): number => n.stats().viewSync?.pulls ?? 0
    const before = nodes.map(pulls)

    cut = true
    await Promise.all(others.map(async (n) => { await lone.libp2p.hangUp(n.peerId) }))
    await pollUntil(() => aliveIn(lone) === 1 && others.every((n) => n.view.get(lone.hostId)?.liveness === 'dead'),
      { timeoutMs: 20_000, intervalMs: 50, what: 'the lone host and the rest to declare each other dead' })
    cut = false
    await pollUntil(() => nodes.every((n) => aliveIn(n) === 6), { timeoutMs: 15_000, intervalMs: 50, what: 'every view whole again' })
    await pollUntil(() => pulls(lone) - (before[5] ?? 0) >= 1, { timeoutMs: 5_000, intervalMs: 20, what: 'the lone host to finish its view pull' })
    await new Promise((resolve) => setTimeout(resolve, 1000))
    expect(pulls(lone) - (before[5] ?? 0)).toBe(1)
    expect(others.map((n, i) => pulls(n) - (before[i] ?? 0))).toEqual([0, 0, 0, 0, 0])
  })
})
