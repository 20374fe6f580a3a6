/**
 * The scale model's pure pieces (bench/src/scale-model/): its clock, its PRNG, its topology and
 * its gossip. Fast: small clusters, no I/O.
 */
import { describe, expect, it } from 'vitest'
import { EventQueue } from '../../bench/src/scale-model/event-queue.js'
import { GossipSim, type GossipParams } from '../../bench/src/scale-model/gossip.js'
import { Cpu, Network } from '../../bench/src/scale-model/network.js'
import { Random } from '../../bench/src/scale-model/random.js'
import { buildTopology } from '../../bench/src/scale-model/topology.js'

const PARAMS: GossipParams = { copyMs: 0.1, firstCopyMs: 0.2, dlazy: 6, gossipFactor: 0.25, gossipHeartbeatMs: 1000, historyGossip: 3, idontwantMinBytes: 512, ihave: true }
const DEG = { d: 4, dlo: 3, dhi: 16, dout: 1 }

function sim (n: number, loss: number, seed = 1): GossipSim {
  const rng = new Random(seed)
  const topo = buildTopology(n, 8, DEG, rng, false)
  return new GossipSim(topo, PARAMS, new Cpu(n, { cores: 'per-host', backgroundUtilisation: 0, backgroundTaskMs: 1 }, rng),
    new Network({ latencyMs: [0.1, 0.5], loss, lossMode: 'drop', rtoMs: 200 }, rng), rng)
}

describe('EventQueue', () => {
  it('pops in time order, ties in insertion order, and never goes back in time', () => {
    const q = new EventQueue()
    const rng = new Random(7)
    for (let i = 0; i < 5000; i++) q.push(Math.floor(rng.next() * 100), 0, i)
    const ev = { kind: 0, a: 0, b: 0, c: 0 }
    let lastT = -1
    let lastA = -1
    while (q.pop(ev)) {
      expect(q.now).toBeGreaterThanOrEqual(lastT)
      if (q.now === lastT) expect(ev.a).toBeGreaterThan(lastA)
      lastT = q.now
      lastA = ev.a
    }
    q.push(5, 0, 1)
    expect(q.peekTime()).toBe(lastT)
  })
})

describe('Random', () => {
  it('is reproducible from its seed', () => {
    const a = new Random(42)
    const b = new Random(42)
    expect(Array.from({ length: 5 }, () => a.next())).toEqual(Array.from({ length: 5 }, () => b.next()))
    expect(new Random(1).sample([1, 2, 3, 4, 5], 3)).toHaveLength(3)
  })
})

describe('topology', () => {
  it('connects every host to at least targetPeers and forms symmetric meshes of about D', () => {
    const topo = buildTopology(500, 8, DEG, new Random(3), false)
    for (let h = 0; h < 500; h++) {
      expect((topo.peers[h] as number[]).length).toBeGreaterThanOrEqual(8)
      const mesh = topo.mesh[h] as number[]
      expect(mesh.length).toBeGreaterThanOrEqual(DEG.dlo)
      expect(mesh.length).toBeLessThanOrEqual(DEG.dhi)
      for (const p of mesh) expect(topo.mesh[p]).toContain(h)
    }
  })
})

describe('GossipSim', () => {
  it('brings a flooded message to every host, each copy counted once at its receiver', () => {
    const s = sim(300, 0)
    const m = s.publish(0, 0, true, 231)
    s.run(10_000, () => s.reachedAll(m))
    expect(s.reachedAll(m)).toBe(true)
    const perHost = s.dataCopies / 299
    expect(perHost).toBeGreaterThan(2)
    expect(perHost).toBeLessThan(8)
  })

  it('repairs lost copies with IHAVE/IWANT', () => {
    const s = sim(200, 0.3, 5)
    const m = s.publish(0, 0, false, 231)
    s.run(20_000)
    expect(s.reachedAll(m)).toBe(true)
    expect(s.controlMsgs).toBeGreaterThan(0)
  })

  it('does not deliver to or through a dead host', () => {
    const s = sim(100, 0)
    s.markDead(5)
    const m = s.publish(0, 0, true, 231)
    s.run()
    expect(s.messages[m]?.seenAt[5]).toBe(Infinity)
    expect(s.reachedAll(m)).toBe(true)
  })
})
