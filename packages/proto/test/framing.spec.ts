import { describe, expect, it } from 'vitest'
import { FrameDecoder, FrameTooLargeError, InvalidFrameError, decodeFrames, encodeFrame, encodeVarint } from '../src/index.js'

describe('varint', () => {
  it.each([
    [0, [0]], [1, [1]], [127, [0x7f]], [128, [0x80, 0x01]], [300, [0xac, 0x02]], [2 ** 32, [0x80, 0x80, 0x80, 0x80, 0x10]]
  ])('encodes %d', (value, bytes) => {
    expect([...encodeVarint(value)]).toEqual(bytes)
  })

  it('refuses negative and fractional lengths', () => {
    expect(() => encodeVarint(-1)).toThrow(InvalidFrameError)
    expect(() => encodeVarint(1.5)).toThrow(InvalidFrameError)
  })
})

describe('FrameDecoder', () => {
  const payloads = [new Uint8Array(0), Uint8Array.from([1, 2, 3]), new Uint8Array(70_000).fill(9)]
  const stream = Uint8Array.from(payloads.flatMap((p) => [...encodeFrame(p)]))

  it('reassembles frames split at every possible byte boundary', () => {
    for (const cut of [1, 2, 3, 7, 64, 4096, stream.length]) {
      const decoder = new FrameDecoder()
      const frames: Uint8Array[] = []
      for (let i = 0; i < stream.length; i += cut) frames.push(...decoder.push(stream.subarray(i, i + cut)))
      expect(frames.map((f) => f.length)).toEqual(payloads.map((p) => p.length))
      expect(decoder.pending).toBe(0)
    }
  })

  it('refuses an oversized frame from its prefix alone, before buffering it', () => {
    const decoder = new FrameDecoder(1024)
    expect(() => decoder.push(encodeVarint(1025))).toThrow(FrameTooLargeError)
  })

  it('refuses an over-long varint prefix', () => {
    expect(() => new FrameDecoder().push(new Uint8Array(9).fill(0xff))).toThrow(InvalidFrameError)
  })

  it('decodeFrames reports a stream cut inside a frame', async () => {
    async function * source (): AsyncGenerator<Uint8Array> { yield encodeFrame(Uint8Array.from([1, 2, 3])).subarray(0, 2) }
    await expect(async () => { for await (const _ of decodeFrames(source())) { /* drain */ } }).rejects.toThrow(InvalidFrameError)
  })
})
