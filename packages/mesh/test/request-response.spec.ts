import { afterEach, describe, expect, it } from 'vitest'
import { CHANNEL_PROTOCOL, type FailedRequestReport, type MeshNode, type RequestOptions } from '../src/index.js'
import { pollUntil } from '@meshvirt/testkit/poll'
import { knowsChannel, TestCluster } from './helpers.js'

const ECHO = '/meshvirt/test-echo/1.0.0'
const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const dec = (b: Uint8Array): string => new TextDecoder().decode(b)

/** The same cases on both paths: a small request rides the peer's channel unless told to take a stream of its own. */
describe.each([
  { path: 'a stream of its own', ownStream: true },
  { path: 'the request channel', ownStream: false }
])('request/response over $path', ({ ownStream }) => {
  const cluster = new TestCluster()
  afterEach(async () => { await cluster.stopAll() })

  /** Two nodes that see each other; on the channel path, each knows the other serves channels before anything is asked. */
  async function pair (): Promise<[MeshNode, MeshNode]> {
    const a = await cluster.start()
    const b = await cluster.start()
    await pollUntil(() => a.view.get(b.hostId) !== undefined && b.view.get(a.hostId) !== undefined, { timeoutMs: 10_000, intervalMs: 20, what: 'a and b to see each other' })
    if (!ownStream) {
      for (const n of [a, b]) await n.handle('/meshvirt/test-ready/1.0.0', async (req) => req)
      await pollUntil(async () => await knowsChannel(a, b) && await knowsChannel(b, a), { timeoutMs: 10_000, intervalMs: 20, what: 'a and b to know each other serves channels' })
    }
    return [a, b]
  }

  const ask = async (from: MeshNode, to: string, protocol: string, body: Uint8Array, options: RequestOptions = {}): Promise<Uint8Array> =>
    await from.request(to, protocol, body, { ...options, ownStream })

  const channelsOpen = (a: MeshNode, b: MeshNode): number =>
    a.libp2p.getConnections(b.peerId).flatMap((c) => c.streams).filter((s) => s.protocol === CHANNEL_PROTOCOL).length

  it('round-trips a request and names the requester', async () => {
    const [a, b] = await pair()
    await b.handle(ECHO, async (req, peer) => enc(`${dec(req)} from ${peer}`))
    const res = await ask(a, b.hostId, ECHO, enc('hello'), { timeoutMs: 5000 })
    expect(dec(res)).toBe(`hello from ${a.hostId}`)
    // Several in parallel, each on its own stream.
    const many = await Promise.all(Array.from({ length: 20 }, async (_, i) => dec(await ask(a, b.hostId, ECHO, enc(String(i))))))
    expect(many).toEqual(Array.from({ length: 20 }, (_, i) => `${i} from ${a.hostId}`))
    expect(channelsOpen(a, b)).toBe(ownStream ? 0 : 1)
  })

  it('reaches a host it holds no connection to, by its advertised addresses', async () => {
    const a = await cluster.start()
    const b = await cluster.start()
    const c = await cluster.start(undefined, { bootstrap: [b.multiaddrs()[0] as string] })
    await pollUntil(() => a.view.get(c.hostId) !== undefined, { timeoutMs: 10_000, intervalMs: 20, what: 'a to learn c from gossip' })
    await c.handle(ECHO, async (req) => req)
    await a.libp2p.hangUp(c.peerId)
    expect(a.libp2p.getConnections(c.peerId)).toHaveLength(0)
    expect(dec(await ask(a, c.hostId, ECHO, enc('via advert addrs'), { timeoutMs: 5000 }))).toBe('via advert addrs')
  })

  it('a connection whose multiplexer closed but that libp2p still lists is dropped, and the request dialled again', async () => {
    const [a, b] = await pair()
    await b.handle(ECHO, async (req) => req)
    expect(dec(await ask(a, b.hostId, ECHO, enc('first'), { timeoutMs: 5000 }))).toBe('first')
    // What CI saw under load: the muxer closed, the socket not yet, so every dial reused the connection
    // and failed with 'The connection muxer is "closed" and not "open"'.
    const conns = a.libp2p.getConnections(b.peerId)
    expect(conns.length).toBeGreaterThan(0)
    for (const c of conns) await (c as unknown as { muxer: { close: () => Promise<void> } }).muxer.close()
    expect(dec(await ask(a, b.hostId, ECHO, enc('again'), { timeoutMs: 5000 }))).toBe('again')
  })

  it('carries a large message', async () => {
    const [a, b] = await pair()
    await b.handle(ECHO, async (req) => req)
    const big = Uint8Array.from({ length: 1024 * 1024 }, (_, i) => i % 251)
    expect(await ask(a, b.hostId, ECHO, big)).toEqual(big)
  })

  it('times out when the handler does not answer', async () => {
    const [a, b] = await pair()
    await b.handle(ECHO, async (_req, _peer, signal) => await new Promise((_resolve, reject) => { signal.addEventListener('abort', () => { reject(new Error('gave up')) }) }))
    await expect(ask(a, b.hostId, ECHO, enc('x'), { timeoutMs: 300 })).rejects.toMatchObject({ code: 'REQUEST_TIMEOUT' })
  })

  it('stops when the caller aborts', async () => {
    const [a, b] = await pair()
    await b.handle(ECHO, async () => await new Promise(() => {}), { timeoutMs: 500 })
    const controller = new AbortController()
    setTimeout(() => { controller.abort() }, 100)
    await expect(ask(a, b.hostId, ECHO, enc('x'), { signal: controller.signal })).rejects.toMatchObject({ code: 'REQUEST_ABORTED' })
  })

  it('fails cleanly when the handler throws, an answer is too large, or nobody handles the protocol', async () => {
    const [a, b] = await pair()
    await b.handle(ECHO, async () => { throw new Error('handler broke') })
    await expect(ask(a, b.hostId, ECHO, enc('x'), { timeoutMs: 3000 })).rejects.toMatchObject({ code: 'REQUEST_FAILED' })
    await b.unhandle(ECHO)
    await b.handle(ECHO, async () => new Uint8Array(2048))
    await expect(ask(a, b.hostId, ECHO, enc('x'), { maxResponseBytes: 1024 })).rejects.toMatchObject({ code: 'REQUEST_FAILED' })
    await expect(ask(a, b.hostId, '/meshvirt/nobody/1.0.0', enc('x'))).rejects.toMatchObject({ code: 'REQUEST_FAILED' })
    await b.handle('/meshvirt/test-small/1.0.0', async (req) => req, { maxRequestBytes: 100 })
    expect(await ask(a, b.hostId, '/meshvirt/test-small/1.0.0', new Uint8Array(100))).toHaveLength(100)
    await expect(ask(a, b.hostId, '/meshvirt/test-small/1.0.0', new Uint8Array(101))).rejects.toMatchObject({ code: 'REQUEST_FAILED' })
    // b still answers.
    await b.unhandle(ECHO)
    await b.handle(ECHO, async (req) => req)
    expect(dec(await ask(a, b.hostId, ECHO, enc('ok')))).toBe('ok')
  })

  it('a request its host could not answer is reported on that host, with where it failed', async () => {
    const failed: FailedRequestReport[] = []
    const a = await cluster.start()
    const b = await cluster.start(undefined, { onRequestFailed: (r) => { failed.push(r) } })
    await pollUntil(() => a.view.get(b.hostId) !== undefined && b.view.get(a.hostId) !== undefined, { timeoutMs: 10_000, intervalMs: 20, what: 'a and b to see each other' })
    if (!ownStream) {
      await b.handle('/meshvirt/test-ready/1.0.0', async (req) => req)
      await pollUntil(async () => await knowsChannel(a, b), { timeoutMs: 10_000, intervalMs: 20, what: 'a to know b serves channels' })
    }
    await b.handle(ECHO, async () => { throw new Error('handler broke') })
    await expect(ask(a, b.hostId, ECHO, enc('x'), { timeoutMs: 3000 })).rejects.toMatchObject({ code: 'REQUEST_FAILED' })
    await pollUntil(() => failed.length > 0, { timeoutMs: 5000, intervalMs: 20, what: 'b to report the failure' })
    expect(failed[0]).toMatchObject({ protocol: ECHO, peer: a.hostId, stage: 'handle' })
    expect(failed[0]?.error.message).toBe('handler broke')
  })
})
