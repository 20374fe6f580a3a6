/** The replica stream's pure parts, table-tested: chunking, digests, positions, the token bucket, the codec. */
import { describe, expect, it } from 'vitest'
import {
  answerOffer, chunkDigest, decodeReplicaMessage, emptyPosition, encodeReplicaMessage, lagMs, planChunks, pointDigest,
  pointsToSend, TokenBucket, type AvailablePoint, type ReplicaExtent, type ReplicaPointHeader, type ReplicaPosition
} from '../src/replica/index.js'

const d = (offset: number, length: number, disk = 'vda'): ReplicaExtent => ({ disk, offset, length, zero: false })
const z = (offset: number, length: number, disk = 'vda'): ReplicaExtent => ({ disk, offset, length, zero: true })

describe('planChunks', () => {
  it.each([
    ['nothing', [], 10, 8, []],
    ['one small extent', [d(0, 4)], 10, 8, [[d(0, 4)]]],
    ['coalesces small extents', [d(0, 4), d(100, 6)], 10, 8, [[d(0, 4), d(100, 6)]]],
    ['splits at the chunk size', [d(0, 25)], 10, 8, [[d(0, 10)], [d(10, 10)], [d(20, 5)]]],
    ['fills the rest of a chunk, then splits', [d(0, 4), d(50, 10)], 10, 8, [[d(0, 4), d(50, 6)], [d(56, 4)]]],
    ['zero extents carry no data', [z(0, 1000), d(1000, 10), z(2000, 5)], 10, 8, [[z(0, 1000), d(1000, 10), z(2000, 5)]]],
    ['extent count bounds a chunk', [z(0, 1), z(1, 1), z(2, 1)], 10, 2, [[z(0, 1), z(1, 1)], [z(2, 1)]]],
    ['disks stay apart', [d(0, 8, 'vda'), d(0, 8, 'vdb')], 10, 8, [[d(0, 8, 'vda'), d(0, 2, 'vdb')], [d(2, 6, 'vdb')]]],
    ['skips empty extents', [d(0, 0), d(5, 3)], 10, 8, [[d(5, 3)]]]
  ])('%s', (_name, extents, chunkBytes, maxExtents, expected) => {
    const plans = planChunks(extents as ReplicaExtent[], { chunkBytes, maxExtents })
    expect(plans.map((p) => p.extents)).toEqual(expected)
    expect(plans.map((p) => p.index)).toEqual(expected.map((_, i) => i))
    for (const p of plans) {
      expect(p.dataBytes).toBe(p.extents.reduce((n, e) => n + (e.zero ? 0 : e.length), 0))
      expect(p.dataBytes).toBeLessThanOrEqual(chunkBytes)
    }
  })

  it('is deterministic (a restarted sender re-plans the same chunks)', () => {
    const extents = Array.from({ length: 50 }, (_, i) => (i % 3 === 0 ? z(i * 1000, 700) : d(i * 1000, 700)))
    expect(planChunks(extents, { chunkBytes: 2048 })).toEqual(planChunks(extents, { chunkBytes: 2048 }))
  })
})

const header = (over: Partial<ReplicaPointHeader> = {}): ReplicaPointHeader => ({
  vmId: 'web-1', epoch: 1, seq: 2, baseSeq: 1, kind: 'incremental', disks: [{ name: 'vda', sizeBytes: 1 << 20 }],
  takenAt: 1_000, chunkCount: 2, dataBytes: 10, ...over
})

describe('digests', () => {
  const data = new Uint8Array([1, 2, 3, 4])
  const base = chunkDigest(0, [d(0, 4)], data)
  it.each([
    ['another index', chunkDigest(1, [d(0, 4)], data)],
    ['another offset', chunkDigest(0, [d(8, 4)], data)],
    ['another disk', chunkDigest(0, [d(0, 4, 'vdb')], data)],
    ['a zero flag', chunkDigest(0, [z(0, 4)], new Uint8Array(0))],
    ['other bytes', chunkDigest(0, [d(0, 4)], new Uint8Array([1, 2, 3, 5]))]
  ])('a chunk digest changes with %s', (_name, other) => {
    expect(Buffer.from(other).equals(Buffer.from(base))).toBe(false)
  })
  it.each([
    ['seq', header({ seq: 3 })], ['epoch', header({ epoch: 2 })], ['takenAt', header({ takenAt: 1 })], ['disk size', header({ disks: [{ name: 'vda', sizeBytes: 2 }] })],
    ['the base image of a layer', header({ disks: [{ name: 'vda', sizeBytes: 1 << 20, baseDigest: LIBRARY_IMAGE }] })]
  ])('a point digest covers the header (%s)', (_name, h) => {
    expect(Buffer.from(pointDigest(h, [base])).equals(Buffer.from(pointDigest(header(), [base])))).toBe(false)
  })
  it('a point digest covers the chunk order', () => {
    const other = chunkDigest(1, [d(4, 4)], data)
    expect(Buffer.from(pointDigest(header(), [base, other])).equals(Buffer.from(pointDigest(header(), [other, base])))).toBe(false)
  })
})

const LIBRARY_IMAGE = `sha256:${'ab'.repeat(32)}`
const layerHeader = (): ReplicaPointHeader => header({ seq: 1, baseSeq: 0, kind: 'full', disks: [{ name: 'vda', sizeBytes: 1 << 20, baseDigest: LIBRARY_IMAGE }, { name: 'vdb', sizeBytes: 1 << 20 }] })

const at = (epoch: number, seq: number): ReplicaPosition => ({ vmId: 'web-1', epoch, seq, takenAt: 500, appliedAt: 600 })

describe('answerOffer (holder side)', () => {
  it.each([
    ['first full point', at(0, 0), header({ kind: 'full', seq: 1, baseSeq: 0 }), undefined, { receivedChunks: 0 }],
    ['the next incremental', at(1, 1), header(), undefined, { receivedChunks: 0 }],
    ['resumes a matching partial', at(1, 1), header(), { header: header(), chunks: 1 }, { receivedChunks: 1 }],
    ['a partial of another point restarts', at(1, 1), header(), { header: header({ takenAt: 7 }), chunks: 1 }, { receivedChunks: 0 }],
    ['a gap', at(1, 1), header({ seq: 4, baseSeq: 3 }), undefined, { refusal: 'gap' }],
    ['an incremental of a new epoch', at(1, 1), header({ epoch: 2, seq: 2, baseSeq: 1 }), undefined, { refusal: 'gap' }],
    ['a full point of a new epoch', at(1, 9), header({ epoch: 2, seq: 1, baseSeq: 0, kind: 'full' }), undefined, { receivedChunks: 0 }],
    ['a stale epoch', at(2, 1), header({ epoch: 1, seq: 5, baseSeq: 4 }), undefined, { refusal: 'stale-epoch' }],
    ['a point it has', at(1, 2), header(), undefined, { refusal: 'already-applied' }],
    ['an older point', at(1, 5), header({ kind: 'full', seq: 3, baseSeq: 0 }), undefined, { refusal: 'already-applied' }],
    ['an incremental counted from an earlier point (a seed copy came between)', at(1, 5), header({ seq: 7, baseSeq: 4 }), undefined, { receivedChunks: 0 }]
  ])('%s', (_name, position, h, partial, expected) => {
    expect(answerOffer(position, h, partial)).toMatchObject(expected)
  })
})

const p = (seq: number, kind: 'full' | 'incremental' = 'incremental', baseSeq = seq - 1): AvailablePoint => ({ seq, kind, baseSeq: kind === 'full' ? 0 : baseSeq })

const seed = (seq: number): AvailablePoint => ({ seq, kind: 'full', baseSeq: 0, seed: true })

describe('pointsToSend (owner side)', () => {
  it.each([
    ['an empty holder gets the full point and its chain', at(0, 0), 1, [p(1, 'full'), p(2), p(3)], [1, 2, 3]],
    ['a holder in the chain gets the rest', at(1, 1), 1, [p(1, 'full'), p(2), p(3)], [2, 3]],
    ['an up-to-date holder gets nothing', at(1, 3), 1, [p(2), p(3)], []],
    ['a holder behind released points gets the newest full', at(1, 1), 1, [p(4, 'full'), p(5)], [4, 5]],
    ['a holder behind with no full point held: take one', at(1, 1), 1, [p(4), p(5)], undefined],
    ['a holder of an older epoch gets the newest full', at(1, 9), 2, [p(1, 'full'), p(2)], [1, 2]],
    ['a holder of a newer epoch: this owner is stale', at(3, 1), 2, [p(1, 'full')], undefined],
    ['nothing held, holder empty', at(0, 0), 1, [], undefined],
    ['nothing held, holder current', at(1, 4), 1, [], []],
    ['a broken chain after the full point', at(0, 0), 1, [p(1, 'full'), p(3, 'incremental', 2)], undefined],
    // Seed copies (a full point for a new holder that leaves the owner's bitmap running).
    ['an in-sync holder skips a seed copy', at(1, 5), 1, [seed(6), p(7, 'incremental', 5)], [7]],
    ['a new holder gets the seed copy, then the incremental counted from before it', at(0, 0), 1, [p(5), seed(6), p(7, 'incremental', 5)], [6, 7]],
    ['only a seed copy newer: the holder waits for the next incremental', at(1, 5), 1, [p(5), seed(6)], []],
    ['a holder behind the seed\'s base gets the seed copy', at(1, 2), 1, [p(5), seed(6), p(7, 'incremental', 5)], [6, 7]],
    ['a full point that restarted the bitmap is not skipped', at(1, 5), 1, [p(6, 'full'), p(7, 'incremental', 6)], [6, 7]]
  ])('%s', (_name, position, epoch, available, expected) => {
    const plan = pointsToSend(position, epoch, available)
    expect(plan?.map((x) => x.seq)).toEqual(expected)
  })

  it.each([[at(0, 0), 10_000, Number.POSITIVE_INFINITY], [at(1, 1), 2_500, 2_000], [at(1, 1), 100, 0]])('lagMs(%o, %i) = %d', (position, now, lag) => {
    expect(lagMs(position, now)).toBe(lag)
  })
})

describe('TokenBucket', () => {
  it.each([
    // [rate B/s, burst, takes as [at ms, bytes], expected waits ms]
    ['within the burst', 1000, 500, [[0, 200], [0, 300]], [0, 0]],
    ['past the burst waits at the rate', 1000, 500, [[0, 500], [0, 250]], [0, 250]],
    ['refills with time', 1000, 500, [[0, 500], [500, 500]], [0, 0]],
    ['never above the burst', 1000, 500, [[10_000, 500], [10_000, 100]], [0, 100]],
    ['a take larger than the burst leaves a debt', 1000, 100, [[0, 1100], [0, 100]], [1000, 1100]]
  ])('%s', (_name, rate, burst, takes, waits) => {
    let now = 0
    const bucket = new TokenBucket({ bytesPerSec: rate, burstBytes: burst, now: () => now })
    const got = (takes as Array<[number, number]>).map(([t, bytes]) => { now = t; return Math.round(bucket.reserve(bytes)) })
    expect(got).toEqual(waits)
  })

  it('holds a stream to its rate (real clock)', async () => {
    const bucket = new TokenBucket({ bytesPerSec: 1_000_000, burstBytes: 100_000 })
    const t0 = performance.now()
    for (let i = 0; i < 10; i++) await bucket.take(50_000)
    // 500 kB at 1 MB/s after a 100 kB burst: ≥ 400 ms.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(380)
  })
})

/** Bytes as plain arrays (Buffer and Uint8Array compare alike). */
function plain (v: unknown): unknown {
  if (v instanceof Uint8Array) return [...v]
  if (Array.isArray(v)) return v.map(plain)
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
  return v
}

describe('replica codec', () => {
  it.each([
    ['offer with a point', { type: 'offer' as const, vmId: 'web-1', point: header() }],
    ['position query', { type: 'offer' as const, vmId: 'web-1' }],
    ['offer of a layer on a library image', { type: 'offer' as const, vmId: 'web-1', point: layerHeader() }],
    ['a refusal: the base is being fetched', { type: 'position' as const, answer: { position: at(1, 2), receivedChunks: 0, refusal: 'base-missing' as const, detail: 'fetching' } }],
    ['a refusal: the base cannot be had', { type: 'position' as const, answer: { position: at(1, 2), receivedChunks: 0, refusal: 'base-unavailable' as const, detail: 'no holder' } }],
    ['position', { type: 'position' as const, answer: { position: at(1, 2), receivedChunks: 3, refusal: 'gap' as const, detail: 'x' } }],
    ['chunk', { type: 'chunk' as const, chunk: { index: 1, extents: [d(0, 3), z(3, 100)], data: new Uint8Array([1, 2, 3]), sha256: new Uint8Array(32).fill(7) } }],
    ['end', { type: 'end' as const, digest: new Uint8Array(32).fill(1) }],
    ['applied', { type: 'applied' as const, answer: { position: at(1, 2), receivedChunks: 2 }, applyMs: 12 }]
  ])('round-trips %s', (_name, message) => {
    const back = decodeReplicaMessage(encodeReplicaMessage(message))
    expect(plain(back)).toEqual(plain(message))
  })

  it.each([
    ['a bad VM id', { type: 'offer' as const, vmId: 'Bad Id' }, /bad VM id/],
    ['a data length that does not match the extents', { type: 'chunk' as const, chunk: { index: 0, extents: [d(0, 4)], data: new Uint8Array(3), sha256: new Uint8Array(32) } }, /carries 3 bytes/],
    ['a short digest', { type: 'end' as const, digest: new Uint8Array(5) }, /32 bytes/],
    ['an incremental on itself', { type: 'offer' as const, vmId: 'web-1', point: header({ baseSeq: 2 }) }, /cannot apply/],
    ['a point of another VM', { type: 'offer' as const, vmId: 'web-2', point: header() }, /carries a point of web-1/],
    ['a point without disks', { type: 'offer' as const, vmId: 'web-1', point: header({ disks: [] }) }, /disks/],
    ['an incremental on a library image', { type: 'offer' as const, vmId: 'web-1', point: header({ disks: [{ name: 'vda', sizeBytes: 1, baseDigest: LIBRARY_IMAGE }] }) }, /incremental point names a base image/],
    ['a malformed image digest', { type: 'offer' as const, vmId: 'web-1', point: { ...layerHeader(), disks: [{ name: 'vda', sizeBytes: 1, baseDigest: 'sha256:xyz' }] } }, /bad base image digest/]
  ])('refuses %s', (_name, message, error) => {
    expect(() => decodeReplicaMessage(encodeReplicaMessage(message))).toThrow(error)
  })

  it('refuses garbage and an empty message', () => {
    expect(() => decodeReplicaMessage(new Uint8Array([0xff, 0xff, 0xff]))).toThrow(/undecodable|without a body/)
    expect(() => decodeReplicaMessage(new Uint8Array(0))).toThrow(/without a body/)
    expect(emptyPosition('x')).toEqual({ vmId: 'x', epoch: 0, seq: 0, takenAt: 0, appliedAt: 0 })
  })
})
