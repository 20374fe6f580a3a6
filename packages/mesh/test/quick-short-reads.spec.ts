/**
 * Length-prefixed decoders answer a short read without a new exception (quick-short-reads.ts), and
 * decode exactly what they decoded before, however the bytes are split across reads.
 */
import { LengthPrefixedDecoder } from '@libp2p/utils'
import { describe, expect, it } from 'vitest'
import { quickShortReads, SHORT_PREFIX, type LengthDecoder } from '../src/quick-short-reads.js'

/** noise's kind of decoder: a 2-byte big-endian length, a new RangeError when short. */
function uint16Decoder (calls: { short: number }): LengthDecoder {
  const decode: LengthDecoder = (data) => {
    const bytes = (data as unknown as { subarray: (a: number, b: number) => Uint8Array }).subarray(0, 2)
    if (data.byteLength < 2) { calls.short++; throw new RangeError('Could not decode int16BE') }
    return (bytes[0] as number) * 256 + (bytes[1] as number)
  }
  decode.bytes = 2
  return decode
}

function frames (sizes: number[], prefix: (n: number) => number[]): { wire: Uint8Array, payloads: number[][] } {
  const payloads = sizes.map((n, f) => Array.from({ length: n }, (_, i) => (f * 31 + i) % 256))
  return { wire: Uint8Array.from(payloads.flatMap((p) => [...prefix(p.length), ...p])), payloads }
}

/** Feeds `wire` in pieces of `step` bytes; returns the payloads decoded. */
function decodeInPieces (decoder: LengthPrefixedDecoder, wire: Uint8Array, step: number): number[][] {
  const out: number[][] = []
  for (let at = 0; at < wire.length; at += step) {
    for (const f of decoder.decode(wire.subarray(at, at + step))) out.push([...f.subarray()])
  }
  return out
}

describe('length-prefixed short reads', () => {
  it('is installed when its module loads (mesh-node.ts imports it)', () => {
    expect(quickShortReads).toBe(true)
  })

  it('decodes 2-byte-prefixed frames split at every size, never asking the decoder about a short buffer', () => {
    const { wire, payloads } = frames([1, 300, 0, 7, 900], (n) => [n >> 8, n & 255])
    for (const step of [1, 2, 3, 5, 64, wire.length]) {
      const calls = { short: 0 }
      const decoder = new LengthPrefixedDecoder({ lengthDecoder: uint16Decoder(calls), encodingLength: () => 2 })
      // An empty payload yields nothing (as the library always did); the others arrive whole and in order.
      expect(decodeInPieces(decoder, wire, step)).toEqual(payloads.filter((p) => p.length > 0))
      expect(calls.short).toBe(0)
    }
  })

  it('leaves varint prefixes to their decoder when a prefix is split (the library default)', () => {
    const varint = (n: number): number[] => n < 128 ? [n] : [(n & 127) | 128, n >> 7]
    const { wire, payloads } = frames([5, 200, 1000], varint)
    for (const step of [1, 2, 7, wire.length]) {
      expect(decodeInPieces(new LengthPrefixedDecoder(), wire, step)).toEqual(payloads)
    }
  })

  it('throws the one prepared error for a short buffer', () => {
    const calls = { short: 0 }
    const decoder = new LengthPrefixedDecoder({ lengthDecoder: uint16Decoder(calls), encodingLength: () => 2 })
    expect([...decoder.decode(new Uint8Array([0]))]).toEqual([])
    const wrapped = (decoder as unknown as { lengthDecoder: LengthDecoder }).lengthDecoder
    expect(() => wrapped(new Uint8Array(1))).toThrow(SHORT_PREFIX)
    expect(wrapped.bytes).toBe(2)
    expect(calls.short).toBe(0)
  })
})
