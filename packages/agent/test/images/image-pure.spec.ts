/** The image library's pure parts, table-tested: names, bitmaps, manifests, piece selection, the catalogue. */
import { describe, expect, it } from 'vitest'
import { pb } from '@meshvirt/proto'
import type { ImageHolding } from '@meshvirt/mesh'
import { catalogueOf, type CatalogueHost } from '../../src/images/catalogue.js'
import { HaveBitmap } from '../../src/images/have-bitmap.js'
import { chunkAnswer, CHUNK_ENVELOPE_ROOM } from '../../src/images/image-protocol.js'
import { canonicalRef, digestHex, parseImageRef } from '../../src/images/image-ref.js'
import { chunkCount, chunkMatches, chunkSpan, manifestProblem, sha256Hex, type ImageManifest } from '../../src/images/manifest.js'
import { nextPieces, unheld, type ChunkSource } from '../../src/images/piece-selection.js'

const D1 = 'sha256:' + '1'.repeat(64)
const D2 = 'sha256:' + '2'.repeat(64)

describe('image refs', () => {
  it.each([
    ['debian-12', 'debian-12:latest'],
    ['debian-12:2026.12', 'debian-12:2026.12'],
    ['a', 'a:latest'],
    ['alpine_3.20:v1', 'alpine_3.20:v1']
  ])('%s is %s', (text, canonical) => { expect(canonicalRef(text)).toBe(canonical) })

  it.each([
    ['', /image name '' must be/],
    ['Debian', /image name 'Debian'/],
    ['-x', /image name '-x'/],
    ['x:', /image tag ''/],
    ['x:.hidden', /image tag '.hidden'/],
    ['x:a:b', /image tag 'a:b'/]
  ])('%s is refused', (text, why) => { expect(() => parseImageRef(text)).toThrow(why) })

  it('a digest gives its hex; anything else is refused', () => {
    expect(digestHex(D1)).toBe('1'.repeat(64))
    expect(() => digestHex('sha256:abc')).toThrow(/not an image digest/)
    expect(() => digestHex('../../etc')).toThrow(/not an image digest/)
  })
})

describe('HaveBitmap', () => {
  it('sets, counts and lists what is missing', () => {
    const b = HaveBitmap.empty(10)
    for (const i of [0, 3, 9]) b.set(i)
    expect([b.has(0), b.has(1), b.has(3), b.has(9), b.has(10)]).toEqual([true, false, true, true, false])
    expect(b.held()).toBe(3)
    expect(b.missing()).toEqual([1, 2, 4, 5, 6, 7, 8])
    expect(() => { b.set(10) }).toThrow(RangeError)
  })

  it('round-trips through bytes; complete is the empty array; stray bits past the end are ignored', () => {
    const b = HaveBitmap.empty(12)
    b.set(1); b.set(11)
    expect(HaveBitmap.from(12, b.toBytes()).missing()).toEqual(b.missing())
    expect(HaveBitmap.full(12).toBytes()).toHaveLength(0)
    expect(HaveBitmap.from(12, new Uint8Array()).complete()).toBe(true)
    expect(HaveBitmap.from(3, Uint8Array.of(0xff)).held()).toBe(3)
  })

  it('counts a chunk set twice once', () => {
    const b = HaveBitmap.from(12, Uint8Array.of(0b101))
    b.set(0); b.set(1); b.set(1)
    expect(b.held()).toBe(3)
    for (let i = 0; i < 12; i++) b.set(i)
    expect(b.complete()).toBe(true)
  })
})

describe('chunkAnswer', () => {
  it.each([0, 1, 127, 128, 16_383, 16_384, 1024 * 1024, 1024 * 1024 + 12_345, 4 * 1024 * 1024])('%i bytes: the same bytes as ImageResponse.encode, the chunk not copied', (n) => {
    const buf = Buffer.alloc(CHUNK_ENVELOPE_ROOM + n)
    for (let i = 0; i < n; i += 4099) buf[CHUNK_ENVELOPE_ROOM + i] = i % 251
    const chunk = buf.subarray(CHUNK_ENVELOPE_ROOM)
    const answer = chunkAnswer(buf, CHUNK_ENVELOPE_ROOM)
    expect(Buffer.from(answer).equals(Buffer.from(pb.ImageResponse.encode({ chunk }).finish()))).toBe(true)
    expect(answer.buffer).toBe(buf.buffer)
    expect(Buffer.from(pb.ImageResponse.decode(answer).chunk as Uint8Array).equals(chunk)).toBe(true)
  })

  it('refuses when the room cannot hold the envelope', () => {
    expect(() => chunkAnswer(Buffer.alloc(2 + 200), 2)).toThrow(RangeError)
  })
})

describe('manifests', () => {
  const m = (over: Partial<ImageManifest> = {}): ImageManifest => ({ digest: D1, sizeBytes: 10_000, format: 'raw', chunkBytes: 4096, chunks: ['a'.repeat(64), 'b'.repeat(64), 'c'.repeat(64)], ...over })

  it.each([
    [1, 4096, 1], [4096, 4096, 1], [4097, 4096, 2], [10_000, 4096, 3]
  ])('%i bytes in %i-byte chunks are %i chunks', (size, chunk, n) => { expect(chunkCount(size, chunk)).toBe(n) })

  it('the last chunk is the remainder', () => {
    expect(chunkSpan(m(), 0)).toEqual({ offset: 0, length: 4096 })
    expect(chunkSpan(m(), 2)).toEqual({ offset: 8192, length: 1808 })
  })

  it('a chunk matches only its own bytes at its own length', () => {
    const bytes = new Uint8Array(1808).fill(7)
    const man = m({ chunks: ['a'.repeat(64), 'b'.repeat(64), sha256Hex(bytes)] })
    expect(chunkMatches(man, 2, bytes)).toBe(true)
    expect(chunkMatches(man, 1, bytes)).toBe(false)
    expect(chunkMatches(man, 2, bytes.subarray(1))).toBe(false)
    expect(chunkMatches(man, 3, bytes)).toBe(false)
    expect(chunkMatches(man, -1, bytes)).toBe(false)
    const flipped = Uint8Array.from(bytes)
    flipped[1000] = 8
    expect(chunkMatches(man, 2, flipped)).toBe(false)
  })

  it.each([
    ['a sound one', m(), D1, undefined],
    ['another digest', m(), D2, /describes/],
    ['a format the library does not take', m({ format: 'vmdk' as never }), D1, /neither qcow2 nor raw/],
    ['too few chunks for its size', m({ chunks: ['a'.repeat(64)] }), D1, /has 1 chunks where/],
    ['a tiny chunk size', m({ chunkBytes: 16 }), D1, /chunk size/],
    ['a malformed chunk digest', m({ chunks: ['a'.repeat(64), 'b'.repeat(64), 'zz'] }), D1, /malformed/],
    ['no bytes', m({ sizeBytes: 0, chunks: ['a'.repeat(64)] }), D1, /not a positive size/]
  ])('%s', (_, man, digest, problem) => {
    const p = manifestProblem(man, digest)
    if (problem === undefined) expect(p).toBeUndefined()
    else expect(p).toMatch(problem)
  })
})

describe('nextPieces', () => {
  const holds = (...chunks: number[]): ChunkSource['have'] => ({ has: (c) => chunks.includes(c) })
  const all: ChunkSource['have'] = { has: () => true }
  const src = (hostId: string, have: ChunkSource['have'], inFlight = 0): ChunkSource => ({ hostId, have, inFlight })

  it.each([
    ['rarest first, image order within a rarity', [0, 1, 2, 3], [], [src('full', all), src('peer', holds(2, 3))], 2, 2,
      [{ chunk: 0, hostId: 'full' }, { chunk: 1, hostId: 'full' }]],
    ['a busy holder\'s chunks wait while another holder has room', [0, 1, 2, 3], [], [src('full', all), src('peer', holds(2, 3))], 1, 2,
      [{ chunk: 0, hostId: 'full' }, { chunk: 2, hostId: 'peer' }]],
    ['a chunk only one fetcher has goes first', [0, 1, 2], [], [src('a', holds(0, 1)), src('b', holds(0, 1, 2))], 4, 1,
      [{ chunk: 2, hostId: 'b' }]],
    ['the least-loaded holder is asked', [0, 1], [], [src('a', all, 2), src('b', all, 0)], 4, 2,
      [{ chunk: 0, hostId: 'b' }, { chunk: 1, hostId: 'b' }]],
    ['loads even out as picks are made', [0, 1, 2, 3], [], [src('a', all), src('b', all)], 4, 4,
      [{ chunk: 0, hostId: 'a' }, { chunk: 1, hostId: 'b' }, { chunk: 2, hostId: 'a' }, { chunk: 3, hostId: 'b' }]],
    ['a holder at its limit is not asked', [0, 1], [], [src('a', all, 2)], 2, 4, []],
    ['chunks in flight are not picked again; the total bounds the rest', [0, 1, 2], [0], [src('a', all)], 4, 2,
      [{ chunk: 1, hostId: 'a' }]],
    ['nothing is asked of nobody', [0, 1], [], [src('a', holds())], 4, 4, []],
    ['every holder at its limit: nothing, however many are missing', [0, 1, 2, 3], [], [src('a', all, 2), src('b', holds(3), 2)], 2, 16, []],
    ['one holder full, the other still asked for what it has', [0, 1, 2, 3], [], [src('a', all, 2), src('b', holds(1, 3))], 2, 16,
      [{ chunk: 1, hostId: 'b' }, { chunk: 3, hostId: 'b' }]]
  ] as Array<[string, number[], number[], ChunkSource[], number, number, unknown[]]>)('%s', (_, missing, inFlight, sources, perSource, total, want) => {
    expect(nextPieces({ missing, inFlight: new Set(inFlight), sources, perSource, total })).toEqual(want)
  })

  it('a fetcher\'s own order breaks ties among equally rare chunks', () => {
    const reversed = (c: number): number => -c
    expect(nextPieces({ missing: [0, 1, 2, 3], inFlight: new Set(), sources: [src('a', all)], perSource: 2, total: 2, tieRank: reversed }))
      .toEqual([{ chunk: 3, hostId: 'a' }, { chunk: 2, hostId: 'a' }])
    // Rarity still comes first.
    expect(nextPieces({ missing: [0, 1, 2, 3], inFlight: new Set(), sources: [src('a', all), src('b', holds(2, 3))], perSource: 2, total: 2, tieRank: reversed }))
      .toEqual([{ chunk: 1, hostId: 'a' }, { chunk: 0, hostId: 'a' }])
  })

  it('names the chunks nobody holds', () => {
    expect(unheld([0, 1, 2], [src('a', holds(1))])).toEqual([0, 2])
  })
})

describe('catalogueOf', () => {
  const held = (digest: string, refs: string[], namedAtMs: number, over: Partial<ImageHolding> = {}): ImageHolding => ({ digest, sizeBytes: 100, format: 'raw', refs, chunkCount: 2, have: new Uint8Array(), namedAtMs, usedBy: [], ...over })
  const host = (hostId: string, images: ImageHolding[], imageTombstones: CatalogueHost['imageTombstones'] = [], alive = true): CatalogueHost => ({ hostId, hostname: hostId, alive, images, imageTombstones })

  it('merges holders and users of the same bytes; a fetcher is a partial holder', () => {
    const cat = catalogueOf([
      host('a', [held(D1, ['deb:latest'], 5, { usedBy: ['vm-1'] })]),
      host('b', [held(D1, [], 0, { have: Uint8Array.of(1), usedBy: ['vm-2'] })])
    ])
    const e = cat.byDigest.get(D1)
    expect(cat.byRef.get('deb:latest')).toBe(D1)
    expect(e?.holders.map((h) => [h.hostId, h.have.held()])).toEqual([['a', 2], ['b', 1]])
    expect(e?.usedBy).toEqual(['vm-1', 'vm-2'])
  })

  it('a tombstone newer than the naming hides the name; a later import shows it again', () => {
    const tomb = { ref: 'deb:latest', digest: D1, deletedAtMs: 10 }
    expect(catalogueOf([host('a', [held(D1, ['deb:latest'], 5)]), host('b', [], [tomb])]).byRef.has('deb:latest')).toBe(false)
    expect(catalogueOf([host('a', [held(D1, ['deb:latest'], 11)]), host('b', [], [tomb])]).byRef.get('deb:latest')).toBe(D1)
    // A tombstone for other bytes does not hide a name re-used for new bytes.
    expect(catalogueOf([host('a', [held(D2, ['deb:latest'], 5)]), host('b', [], [tomb])]).byRef.get('deb:latest')).toBe(D2)
  })

  it('two byte sets under one name: the more recently named wins', () => {
    const cat = catalogueOf([host('a', [held(D1, ['x:1'], 5)]), host('b', [held(D2, ['x:1'], 9)])])
    expect(cat.byRef.get('x:1')).toBe(D2)
    expect(cat.byDigest.get(D1)?.refs).toEqual([])
  })
})
