/** FrameStream: frames reassembled from any split of the bytes; a reader that falls behind pauses the stream. */
import { describe, expect, it } from 'vitest'
import { encodeFrame } from '@meshvirt/proto'
import { FRAME_HIGH_WATER_BYTES, FrameStream } from '../src/replica/frame-stream.js'

/** Just enough of a libp2p 3 message stream for FrameStream. */
class FakeStream extends EventTarget {
  readStatus: 'readable' | 'paused' = 'readable'
  maxReadBufferLength = 0
  sent: Uint8Array[] = []
  pause (): void { this.readStatus = 'paused' }
  resume (): void { this.readStatus = 'readable' }
  send (b: Uint8Array): boolean { this.sent.push(b); return true }
  async onDrain (): Promise<void> {}
  abort (): void {}
  deliver (bytes: Uint8Array): void { this.dispatchEvent(Object.assign(new Event('message'), { data: bytes })) }
  end (): void { this.dispatchEvent(new Event('remoteCloseWrite')) }
}

const frames = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array(300).fill(7), new Uint8Array(70_000).fill(9)]
const wire = Buffer.concat(frames.map((f) => encodeFrame(f)))

describe('FrameStream', () => {
  it.each([1, 2, 3, 7, 128, 4096, wire.length])('reassembles frames delivered in pieces of %i bytes', async (size) => {
    const s = new FakeStream()
    const fs = new FrameStream(s as never, 1 << 20)
    for (let i = 0; i < wire.length; i += size) s.deliver(wire.subarray(i, i + size))
    s.end()
    for (const f of frames) expect(Buffer.from(await fs.read()).equals(Buffer.from(f))).toBe(true)
    await expect(fs.read()).rejects.toMatchObject({ code: 'ERR_REPLICA_TRANSFER' })
  })

  it('pauses the stream past the high-water mark and resumes once read down', async () => {
    const s = new FakeStream()
    const fs = new FrameStream(s as never, 4 << 20)
    const big = encodeFrame(new Uint8Array(2 << 20))
    const n = FRAME_HIGH_WATER_BYTES / (2 << 20) + 1
    for (let i = 0; i < n; i++) s.deliver(big)
    expect(s.readStatus).toBe('paused')
    for (let i = 0; i < n; i++) await fs.read()
    expect(s.readStatus).toBe('readable')
  })

  it('refuses a frame over the limit', async () => {
    const s = new FakeStream()
    const fs = new FrameStream(s as never, 10)
    s.deliver(encodeFrame(new Uint8Array(11)))
    await expect(fs.read()).rejects.toMatchObject({ code: 'ERR_REPLICA_PROTOCOL' })
  })

  it('writes length-prefixed frames', async () => {
    const s = new FakeStream()
    await new FrameStream(s as never, 10).write(new Uint8Array([5, 6]))
    expect([...s.sent[0] as Uint8Array]).toEqual([2, 5, 6])
  })
})
