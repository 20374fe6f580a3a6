/**
 * The replica stream between two real libp2p nodes in one process, with the simulated driver's points
 * (real bytes, in memory) and a holder on disk: full then incrementals converge byte for byte; a cut
 * connection resumes where the holder is; gaps, stale epochs and damaged data are refused; a holder
 * that crashed after committing a point replays it before exposing anything.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SimHypervisor } from '@meshvirt/hypervisor'
import { createMeshNode, generateClusterKey, generateIdentity, type MeshNode } from '@meshvirt/mesh'
import {
  HolderReplica, OutgoingPoint, pointsToSend, queryReplicaPosition, ReplicaHolderService, shipPoint, TokenBucket, type AppliedEvent
} from '../src/replica/index.js'

const MiB = 1024 * 1024
const DISK = 8 * MiB

describe('replica stream (two libp2p nodes, simulated points)', () => {
  let dir: string
  let nodes: MeshNode[]
  let holder: ReplicaHolderService
  let hv: SimHypervisor
  let expected: Buffer
  const applied: AppliedEvent[] = []

  // LAN timing: the tests cut connections on purpose, and under load the test preset's failure
  // detector would then declare the peer dead and hang up on the very reconnection under test.
  async function node (): Promise<MeshNode> {
    const n = await createMeshNode({
      privateKey: (await generateIdentity()).privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], clusterKey, clusterName: 'rep', timing: 'lan',
      bootstrap: nodes.length > 0 ? [nodes[0]?.multiaddrs()[0] as string] : []
    })
    nodes.push(n)
    return n
  }
  const clusterKey = generateClusterKey()

  async function write (offset: number, length: number): Promise<void> {
    const bytes = randomBytes(length)
    bytes.copy(expected, offset)
    await hv.replication.write('vm1', 'vda', offset, bytes)
  }

  async function point (kind: 'full' | 'incremental', epoch = 1, chunkBytes = 256 * 1024): Promise<OutgoingPoint> {
    const p = await hv.replication.takePoint('vm1', { kind })
    return new OutgoingPoint(await hv.replication.openPoint('vm1', p.seq), { epoch, chunkBytes })
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mv-replica-'))
    nodes = []
    applied.length = 0
    expected = Buffer.alloc(DISK)
    hv = new SimHypervisor()
    await hv.create({ id: 'vm1', vcpus: 1, memoryMiB: 64, boot: { kind: 'disk' }, disks: [{ name: 'vda', sizeMiB: DISK / MiB }] })
    await hv.start('vm1')
    await hv.replication.startReplication('vm1')
  })

  afterEach(async () => {
    await holder?.stop()
    await Promise.all(nodes.map(async (n) => { await n.stop() }))
    await rm(dir, { recursive: true, force: true })
  })

  async function pair (): Promise<{ owner: MeshNode, peer: MeshNode }> {
    const owner = await node()
    const peer = await node()
    holder = new ReplicaHolderService(peer.libp2p, { root: join(dir, 'holder'), onApplied: (e) => { applied.push(e) }, log: (m, f) => { if (m.includes('failed')) console.log(m, JSON.stringify(f)) } })
    await holder.start()
    await owner.libp2p.dial(peer.libp2p.getMultiaddrs()[0] as never)
    return { owner, peer }
  }

  async function holderImage (): Promise<Buffer> {
    const images = await (await holder.replica('vm1')).images()
    return await readFile(images.disks[0]?.path as string)
  }

  it('ships a full point then incrementals; the holder converges byte for byte and reports its position', async () => {
    const { owner, peer } = await pair()
    await write(0, 3 * MiB)
    await write(5 * MiB, 100_000)
    const full = await point('full')
    const first = await shipPoint(owner.libp2p, peer.hostId, full)
    expect(first).toMatchObject({ skipped: false, resumedFrom: 0, sentChunks: full.header.chunkCount })
    expect(first.answer.position).toMatchObject({ epoch: 1, seq: 1, takenAt: full.header.takenAt })
    expect((await holderImage()).equals(expected)).toBe(true)

    for (let i = 0; i < 3; i++) {
      await write(1 * MiB + i * 70_000, 50_000)
      const inc = await point('incremental')
      const res = await shipPoint(owner.libp2p, peer.hostId, inc)
      expect(res.answer.position.seq).toBe(2 + i)
      expect(res.sentBytes).toBeLessThan(256 * 1024)
      expect((await holderImage()).equals(expected)).toBe(true)
    }
    expect(applied.map((e) => e.position.seq)).toEqual([1, 2, 3, 4])
    const where = await queryReplicaPosition(owner.libp2p, peer.hostId, 'vm1')
    expect(where.position).toMatchObject({ epoch: 1, seq: 4 })
    // Offering a point the holder has is a no-op.
    expect((await shipPoint(owner.libp2p, peer.hostId, full)).skipped).toBe(true)
    // What it costs the holder's disk: the sparse image holds about what was written.
    const used = await (await holder.replica('vm1')).usageBytes()
    expect(used).toBeGreaterThanOrEqual(3 * MiB)
    expect(used).toBeLessThan(DISK)
    await holder.removeReplica('vm1')
    expect((await queryReplicaPosition(owner.libp2p, peer.hostId, 'vm1')).position.seq).toBe(0)
  })

  it('refuses a gap and a stale epoch; the owner plans the catch-up with pointsToSend', async () => {
    const { owner, peer } = await pair()
    await write(0, 100_000)
    const full = await point('full', 2)
    await write(200_000, 10)
    const inc2 = await point('incremental', 2)
    await write(300_000, 10)
    const inc3 = await point('incremental', 2)
    await expect(shipPoint(owner.libp2p, peer.hostId, inc3)).rejects.toMatchObject({ code: 'ERR_REPLICA_REFUSED', refusal: 'gap' })
    const where = await queryReplicaPosition(owner.libp2p, peer.hostId, 'vm1')
    const plan = pointsToSend(where.position, 2, [full, inc2, inc3].map((p) => ({ seq: p.header.seq, kind: p.header.kind, baseSeq: p.header.baseSeq })))
    expect(plan?.map((p) => p.seq)).toEqual([1, 2, 3])
    for (const p of [full, inc2, inc3]) await shipPoint(owner.libp2p, peer.hostId, p)
    expect((await holderImage()).equals(expected)).toBe(true)
    // An owner of an older epoch (a returning old owner) is fenced off.
    const old = await point('full', 1)
    await expect(shipPoint(owner.libp2p, peer.hostId, old)).rejects.toMatchObject({ refusal: 'stale-epoch' })
  })

  it('resumes after the connection is cut mid-transfer, not from zero, within the bandwidth bound', async () => {
    const { owner, peer } = await pair()
    await write(0, 6 * MiB)
    const full = await point('full', 1, 128 * 1024)
    expect(full.header.chunkCount).toBe(48)
    const bucket = new TokenBucket({ bytesPerSec: 8 * MiB, burstBytes: 256 * 1024 })
    let cut: Promise<void> | undefined
    const t0 = performance.now()
    await expect(shipPoint(owner.libp2p, peer.hostId, full, {
      bucket,
      onChunk: (index) => { if (index === 20) cut ??= owner.libp2p.hangUp(peer.peerId) }
    })).rejects.toMatchObject({ code: 'ERR_REPLICA_TRANSFER' })
    // The disconnect completes (a dial meanwhile would find the old connection still closing).
    await cut
    const partial = await queryReplicaPosition(owner.libp2p, peer.hostId, 'vm1')
    expect(partial.position.seq).toBe(0)
    const res = await shipPoint(owner.libp2p, peer.hostId, full, { bucket })
    const elapsed = (performance.now() - t0) / 1000
    expect(res.resumedFrom).toBeGreaterThan(0)
    expect(res.resumedFrom).toBeLessThanOrEqual(21)
    expect(res.sentChunks).toBe(48 - res.resumedFrom)
    expect((await holderImage()).equals(expected)).toBe(true)
    // 6 MiB at 8 MiB/s (burst 256 KiB) cannot go faster than ~0.72 s.
    expect(elapsed).toBeGreaterThan(0.65)
    console.log(`cut after chunk 20: resumed from chunk ${res.resumedFrom}, ${res.sentChunks} chunks re-sent, ${elapsed.toFixed(2)} s at 8 MiB/s`)
  })

  it('a restarted holder resumes from its partial on disk; damaged data is refused and never applied', async () => {
    const { owner, peer } = await pair()
    await write(0, 2 * MiB)
    const full = await point('full', 1, 128 * 1024)
    let cut: Promise<void> | undefined
    await expect(shipPoint(owner.libp2p, peer.hostId, full, { onChunk: (i) => { if (i === 5) cut ??= owner.libp2p.hangUp(peer.peerId) } }))
      .rejects.toMatchObject({ code: 'ERR_REPLICA_TRANSFER' })
    await cut
    // The holder process restarts: a new service over the same dir.
    await holder.stop()
    holder = new ReplicaHolderService(peer.libp2p, { root: join(dir, 'holder') })
    await holder.start()
    const res = await shipPoint(owner.libp2p, peer.hostId, full)
    expect(res.resumedFrom).toBeGreaterThan(0)
    expect((await holderImage()).equals(expected)).toBe(true)

    // A chunk whose bytes were damaged on the way does not match its sha256.
    await write(0, 1000)
    const inc = await point('incremental')
    const replica = await holder.replica('vm1')
    expect(await replica.offer(inc.header)).toMatchObject({ receivedChunks: 0 })
    const chunk = await inc.chunk(inc.plans[0] as never)
    const damaged = { ...chunk, data: Buffer.from(chunk.data).fill(9, 0, 10) }
    await expect(replica.receive(damaged)).rejects.toMatchObject({ code: 'ERR_REPLICA_CHECKSUM' })
    await replica.discardPartial()
    expect(replica.position.seq).toBe(1)
  })

  it('replays a committed point after a crash between commit and apply, or in the middle of the apply', async () => {
    const root = join(dir, 'direct')
    const receiveAll = async (replica: HolderReplica, p: OutgoingPoint): Promise<void> => {
      expect(await replica.offer(p.header)).toMatchObject({ receivedChunks: 0 })
      for (const plan of p.plans) await replica.receive(await p.chunk(plan))
    }
    await write(0, MiB)
    const full = await point('full')
    const replica = await HolderReplica.open(root, 'vm1')
    await receiveAll(replica, full)
    await replica.finish(full.digest())

    // Crash right after the commit: the position still says 1, the journal holds 2.
    await write(4096, 5000)
    const inc = await point('incremental')
    await receiveAll(replica, inc)
    await replica.commit(inc.digest())
    expect(replica.position.seq).toBe(1)
    const reopened = await HolderReplica.open(root, 'vm1')
    expect(reopened.position.seq).toBe(2)
    expect((await readFile((await reopened.images()).disks[0]?.path as string)).equals(expected)).toBe(true)

    // Crash in the middle of an apply: the journal is there, the image half written (here: garbage
    // over every region the point writes, worse than any real half-apply).
    await write(500_000, 300_000)
    const inc3 = await point('incremental')
    await receiveAll(reopened, inc3)
    await reopened.commit(inc3.digest())
    const image = join(root, 'vda.raw')
    const torn = await readFile(image)
    torn.fill(0xee, 500_000, 800_000)
    await writeFile(image, torn)
    const afterCrash = await HolderReplica.open(root, 'vm1')
    expect(afterCrash.position.seq).toBe(3)
    expect((await readFile(image)).equals(expected)).toBe(true)
  })

  it('serves many VMs at once, one session per VM, all converging (simulated driver at scale)', async () => {
    const { owner, peer } = await pair()
    const ids = Array.from({ length: 24 }, (_, i) => `vm-${i}`)
    const want = new Map<string, Buffer>()
    for (const id of ids) {
      await hv.create({ id, vcpus: 1, memoryMiB: 64, boot: { kind: 'disk' }, disks: [{ name: 'vda', sizeMiB: 1 }] })
      await hv.start(id)
      want.set(id, Buffer.alloc(MiB))
    }
    const bucket = new TokenBucket({ bytesPerSec: 64 * MiB })
    // One round trip first: more than 10 streams opened on a connection the holder has not finished
    // setting up make libp2p abort the whole connection (MaxEarlyStreamsError, maxEarlyStreams = 10).
    await queryReplicaPosition(owner.libp2p, peer.hostId, 'vm1')
    const t0 = performance.now()
    await Promise.all(ids.map(async (id, n) => {
      for (let round = 0; round < 3; round++) {
        const bytes = randomBytes(20_000)
        const offset = (n * 7919 + round * 65_536) % (MiB - bytes.length)
        bytes.copy(want.get(id) as Buffer, offset)
        await hv.replication.write(id, 'vda', offset, bytes)
        const p = await hv.replication.takePoint(id, { kind: round === 0 ? 'full' : 'incremental' })
        const out = new OutgoingPoint(await hv.replication.openPoint(id, p.seq), { epoch: 1 })
        await shipPoint(owner.libp2p, peer.hostId, out, { bucket })
        await hv.replication.releasePoint(id, p.seq)
      }
    }))
    for (const id of ids) {
      const images = await (await holder.replica(id)).images()
      expect(images.position.seq).toBe(3)
      expect((await readFile(images.disks[0]?.path as string)).equals(want.get(id) as Buffer)).toBe(true)
    }
    console.log(`${ids.length} VMs × 3 points to one holder in ${(performance.now() - t0).toFixed(0)} ms`)
  })

  it('stop waits out a stream still at its offer: once stopped, nothing under the root is written', async () => {
    const owner = await node()
    const peer = await node()
    let asked!: () => void
    const offered = new Promise<void>((resolve) => { asked = resolve })
    let decide!: (ok: boolean) => void
    const accepted = new Promise<boolean>((resolve) => { decide = resolve })
    const root = join(dir, 'stopping')
    holder = new ReplicaHolderService(peer.libp2p, { root, accept: async () => { asked(); return await accepted } })
    await holder.start()
    await owner.libp2p.dial(peer.libp2p.getMultiaddrs()[0] as never)
    await write(0, MiB)
    const shipping = shipPoint(owner.libp2p, peer.hostId, await point('full')).catch((err: unknown) => err)
    await offered
    // The agent stops while the offer waits for its answer (as the keeper's accept can).
    const stopping = holder.stop()
    decide(true)
    await stopping
    expect(await shipping).toMatchObject({ code: expect.stringMatching(/^ERR_REPLICA_/) })
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(existsSync(join(root, 'vm1'))).toBe(false)
    await expect(holder.replica('vm1')).rejects.toMatchObject({ code: 'ERR_REPLICA_STOPPED' })
    await expect(holder.removeReplica('vm1')).rejects.toMatchObject({ code: 'ERR_REPLICA_STOPPED' })
  })
})
