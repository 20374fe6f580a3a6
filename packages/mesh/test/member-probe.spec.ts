import { afterEach, describe, expect, it, vi } from 'vitest'
import { PROBE_PROTOCOL, probeHost } from '../src/member-probe.js'
import { CHANNEL_PROTOCOL } from '../src/request-channel.js'
import { pollUntil } from '@meshvirt/testkit/poll'
import { knowsChannel, TestCluster } from './helpers.js'

/** Real libp2p nodes on loopback: a probe is a request on the channel, its answer the proof. */
describe('a liveness probe', () => {
  const cluster = new TestCluster()
  afterEach(async () => { vi.restoreAllMocks(); await cluster.stopAll() })

  async function pair (): Promise<[Awaited<ReturnType<TestCluster['start']>>, Awaited<ReturnType<TestCluster['start']>>]> {
    const a = await cluster.start()
    const b = await cluster.start()
    await pollUntil(async () => await knowsChannel(a, b), { timeoutMs: 10_000, what: 'a to know b serves channels' })
    return [a, b]
  }

  it('rides one channel: twenty probes open one stream, not twenty', async () => {
    const [a, b] = await pair()
    const dials = vi.spyOn(a.libp2p, 'dialProtocol')
    for (let i = 0; i < 20; i++) await probeHost(a, b.hostId, AbortSignal.timeout(2_000))
    // Other dials may happen meanwhile (a's view sync pulls from b on its own stream): count these two.
    const protocols = dials.mock.calls.map((c) => String(c[1]))
    expect(protocols.filter((p) => p.includes(PROBE_PROTOCOL))).toEqual([])
    expect(protocols.filter((p) => p.includes(CHANNEL_PROTOCOL)).length).toBeLessThanOrEqual(1)
  })

  it('counts a refusal as an answer (a host of an older release serves no probe protocol)', async () => {
    const [a, b] = await pair()
    await b.unhandle(PROBE_PROTOCOL)
    await expect(a.request(b.hostId, PROBE_PROTOCOL, new Uint8Array(0), { timeoutMs: 2_000 })).rejects.toThrow(/not served/)
    await expect(probeHost(a, b.hostId, AbortSignal.timeout(2_000))).resolves.toBeUndefined()
  })

  it('counts a refusal on a stream of its own as an answer too (a host that serves no channels)', async () => {
    const [a, b] = await pair()
    await b.unhandle(PROBE_PROTOCOL)
    const onStream = { request: async (peer: string, protocol: string, body: Uint8Array, o: { signal: AbortSignal, maxResponseBytes: number }) => await a.request(peer, protocol, body, { ...o, ownStream: true }) }
    await expect(onStream.request(b.hostId, PROBE_PROTOCOL, new Uint8Array(0), { signal: AbortSignal.timeout(2_000), maxResponseBytes: 16 })).rejects.toThrow(/negotiate/)
    await expect(probeHost(onStream, b.hostId, AbortSignal.timeout(2_000))).resolves.toBeUndefined()
  })

  it('fails for a host that is gone, within its signal', async () => {
    const [a, b] = await pair()
    const id = b.hostId
    await b.stop()
    const started = Date.now()
    await expect(probeHost(a, id, AbortSignal.timeout(1_000))).rejects.toThrow()
    expect(Date.now() - started).toBeLessThan(1_500)
  })
})
