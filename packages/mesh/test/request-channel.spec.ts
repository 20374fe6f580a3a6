import { afterEach, describe, expect, it } from 'vitest'
import type { Stream } from '@libp2p/interface'
import { pollUntil } from '@meshvirt/testkit/poll'
import { CHANNEL_MAX_REQUEST_BYTES, CHANNEL_PROTOCOL, type FailedRequestReport, type MeshNode, type MeshNodeInit } from '../src/index.js'
import { knowsChannel, TestCluster } from './helpers.js'

const ECHO = '/meshvirt/test-echo/1.0.0'
const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const dec = (b: Uint8Array): string => new TextDecoder().decode(b)

/** A promise and its resolver, to hold handlers until a test lets them go. */
function gate (): { open: () => void, wait: Promise<void> } {
  let open = (): void => {}
  const wait = new Promise<void>((resolve) => { open = resolve })
  return { open, wait }
}

describe('the request channel between two hosts', () => {
  const cluster = new TestCluster()
  afterEach(async () => { await cluster.stopAll() })

  /** a and b, b answering ECHO with `handler`, a knowing b serves channels. */
  async function pair (handler: (req: Uint8Array) => Promise<Uint8Array>, opts: { b?: Partial<MeshNodeInit>, maxInboundRequests?: number } = {}): Promise<[MeshNode, MeshNode]> {
    const a = await cluster.start()
    const b = await cluster.start(undefined, opts.b)
    await pollUntil(() => a.view.get(b.hostId) !== undefined, { timeoutMs: 10_000, intervalMs: 20, what: 'a to see b' })
    await b.handle(ECHO, handler, opts.maxInboundRequests !== undefined ? { maxInboundRequests: opts.maxInboundRequests } : {})
    await pollUntil(async () => await knowsChannel(a, b), { timeoutMs: 10_000, intervalMs: 20, what: 'a to know b serves channels' })
    return [a, b]
  }

  const streamsOf = (a: MeshNode, b: MeshNode, protocol: string): Stream[] =>
    a.libp2p.getConnections(b.peerId).flatMap((c) => c.streams).filter((s) => s.protocol === protocol)

  it('carries concurrent requests on one stream, each answer as soon as it is ready', async () => {
    const slow = gate()
    const [a, b] = await pair(async (req) => {
      if (dec(req) === 'slow') await slow.wait
      return req
    })
    const slowAnswer = a.request(b.hostId, ECHO, enc('slow'))
    const fast = await Promise.all(Array.from({ length: 30 }, async (_, i) => dec(await a.request(b.hostId, ECHO, enc(`fast ${i}`)))))
    expect(fast).toEqual(Array.from({ length: 30 }, (_, i) => `fast ${i}`))
    // All 31 went on one channel, none on a stream of its own; the slow one still waits.
    expect(streamsOf(a, b, CHANNEL_PROTOCOL)).toHaveLength(1)
    expect(streamsOf(a, b, ECHO)).toHaveLength(0)
    slow.open()
    expect(dec(await slowAnswer)).toBe('slow')
  })

  it('holds requests over a protocol\'s concurrency until a slot frees (back-pressure, not refusals)', async () => {
    let running = 0
    let most = 0
    const [a, b] = await pair(async (req) => {
      most = Math.max(most, ++running)
      await new Promise((resolve) => setTimeout(resolve, 1))
      running--
      return req
    }, { maxInboundRequests: 2 })
    // 600 at once: past the 64-stream limit a stream per request would have hit, and past the
    // channel's 256 waiting (it stops reading until half have started).
    const answers = await Promise.all(Array.from({ length: 600 }, async (_, i) => dec(await a.request(b.hostId, ECHO, enc(String(i)), { timeoutMs: 30_000 }))))
    expect(answers).toEqual(Array.from({ length: 600 }, (_, i) => String(i)))
    expect(most).toBe(2)
  })

  it('survives a handler that fails and one that runs out of time; a late answer is dropped', async () => {
    const failed: FailedRequestReport[] = []
    const late = gate()
    const [a, b] = await pair(async (req) => {
      const what = dec(req)
      if (what === 'throw') throw new Error('handler broke')
      if (what === 'late') await late.wait
      return req
    }, { b: { onRequestFailed: (r) => { failed.push(r) } } })
    expect(dec(await a.request(b.hostId, ECHO, enc('first')))).toBe('first')
    const [channel] = streamsOf(a, b, CHANNEL_PROTOCOL)
    await expect(a.request(b.hostId, ECHO, enc('throw'))).rejects.toMatchObject({ code: 'REQUEST_FAILED', message: expect.stringContaining('handler broke') })
    await expect(a.request(b.hostId, ECHO, enc('late'), { timeoutMs: 200 })).rejects.toMatchObject({ code: 'REQUEST_TIMEOUT' })
    late.open()
    expect(dec(await a.request(b.hostId, ECHO, enc('after')))).toBe('after')
    expect(streamsOf(a, b, CHANNEL_PROTOCOL)).toEqual([channel])
    expect(failed).toMatchObject([{ protocol: ECHO, peer: a.hostId, stage: 'handle' }])
  })

  it('fails what is in flight when the channel breaks, and opens another for the next request', async () => {
    const held = gate()
    const [a, b] = await pair(async (req) => { await held.wait; return req })
    // The request's own time-out is far longer than opening the channel takes even on a loaded
    // machine: in CI the channel once took ~5 s to appear, and a 5 s time-out then beat the break.
    const inFlight = a.request(b.hostId, ECHO, enc('x'), { timeoutMs: 30_000 })
    await pollUntil(() => streamsOf(b, a, CHANNEL_PROTOCOL).length === 1, { timeoutMs: 20_000, intervalMs: 10, what: 'b to hold the channel' })
    streamsOf(b, a, CHANNEL_PROTOCOL)[0]?.abort(new Error('test breaks the channel'))
    await expect(inFlight).rejects.toMatchObject({ code: 'REQUEST_FAILED' })
    held.open()
    expect(dec(await a.request(b.hostId, ECHO, enc('again')))).toBe('again')
    expect(streamsOf(a, b, CHANNEL_PROTOCOL)).toHaveLength(1)
  }, 60_000)

  it('sends a large request, and one marked ownStream, on a stream of its own', async () => {
    const held = gate()
    const [a, b] = await pair(async (req) => { await held.wait; return req.subarray(0, 4) })
    const big = a.request(b.hostId, ECHO, new Uint8Array(CHANNEL_MAX_REQUEST_BYTES + 1).fill(7))
    const own = a.request(b.hostId, ECHO, enc('bulk'), { ownStream: true })
    await pollUntil(() => streamsOf(a, b, ECHO).length === 2, { timeoutMs: 5000, intervalMs: 10, what: 'two streams of their own' })
    expect(streamsOf(a, b, CHANNEL_PROTOCOL)).toHaveLength(0)
    held.open()
    expect([...await big]).toEqual([7, 7, 7, 7])
    expect(dec(await own)).toBe('bulk')
  })

  it('refuses a request over the peer\'s share of request bytes, and gives every byte back', async () => {
    const held = gate()
    const [a, b] = await pair(async (req) => { await held.wait; return req.subarray(0, 1) }, { b: { requestBuffer: { perPeerBytes: 12_000 } } })
    const settled = Promise.allSettled(Array.from({ length: 4 }, async () => await a.request(b.hostId, ECHO, new Uint8Array(5_000), { timeoutMs: 5000 })))
    await pollUntil(() => (b.stats().requestBuffer?.refused.peer ?? 0) >= 2, { timeoutMs: 5000, intervalMs: 10, what: 'b to refuse two over the share' })
    held.open()
    const out = await settled
    expect(out.filter((o) => o.status === 'fulfilled')).toHaveLength(2)
    expect(out.filter((o) => o.status === 'rejected').map((o) => (o as PromiseRejectedResult).reason.code)).toEqual(['REQUEST_FAILED', 'REQUEST_FAILED'])
    await pollUntil(() => b.stats().requestBuffer?.bytes === 0, { timeoutMs: 5000, intervalMs: 10, what: 'every byte given back' })
  })

  it('resets a channel that sends a frame it cannot read, and keeps answering', async () => {
    const failed: FailedRequestReport[] = []
    const [a, b] = await pair(async (req) => req, { b: { onRequestFailed: (r) => { failed.push(r) } } })
    const raw = await a.libp2p.dialProtocol(b.peerId, CHANNEL_PROTOCOL)
    raw.send(Uint8Array.from([6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))
    await pollUntil(() => failed.length > 0, { timeoutMs: 5000, intervalMs: 10, what: 'b to refuse the frame' })
    expect(failed[0]).toMatchObject({ protocol: CHANNEL_PROTOCOL, peer: a.hostId, stage: 'read' })
    await pollUntil(() => raw.status !== 'open', { timeoutMs: 5000, intervalMs: 10, what: 'the bad channel reset' })
    expect(dec(await a.request(b.hostId, ECHO, enc('still here')))).toBe('still here')
  })

  it('falls back to a stream per request with a peer that serves no channels (an older release)', async () => {
    const [a, b] = await pair(async (req) => req)
    await b.libp2p.unhandle(CHANNEL_PROTOCOL)
    await pollUntil(async () => !(await knowsChannel(a, b)), { timeoutMs: 10_000, intervalMs: 20, what: 'a to learn b serves no channels' })
    expect(dec(await a.request(b.hostId, ECHO, enc('old way')))).toBe('old way')
    expect(streamsOf(a, b, CHANNEL_PROTOCOL)).toHaveLength(0)
  })
})
