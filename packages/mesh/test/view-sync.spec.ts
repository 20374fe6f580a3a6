import { afterEach, describe, expect, it } from 'vitest'
import { pollUntil } from '@meshvirt/testkit/poll'
import {
  LOCAL_TEST_TIMING, SignedAdverts, ViewSync, emptyAdvertContent, encodeHostAdvert, generateIdentity, seqnoBytes,
  signedBytes, verifySignedAdvert, type HostAdvert, type HostIdentity, type SignedAdvert
} from '../src/index.js'
import { capacity, TestCluster } from './helpers.js'

const TOPIC = '/meshvirt/test/adverts/1'

function advertOf (hostId: string, vcpus = 8): HostAdvert {
  return { ...emptyAdvertContent(), capacity: capacity(vcpus), hostId, incarnation: 1, seq: 1, addrs: [], sentAtMs: 1, heartbeatIntervalMs: 5000 }
}

async function signedBy (signer: HostIdentity, advert: HostAdvert): Promise<SignedAdvert> {
  const data = encodeHostAdvert(advert)
  const seqno = seqnoBytes(7n)
  return { data, seqno, signature: await signer.privateKey.sign(signedBytes(TOPIC, signer.hostId, data, seqno)) }
}

describe('signed adverts', () => {
  it('an advert signed by its host checks out; altered, misattributed or on another topic it does not', async () => {
    const a = await generateIdentity()
    const b = await generateIdentity()
    const good = await signedBy(a, advertOf(a.hostId))
    const ok = await verifySignedAdvert(TOPIC, good)
    expect(ok.ok && ok.advert.hostId).toBe(a.hostId)

    // The same signature over different content (more CPUs claimed).
    const altered = { ...good, data: encodeHostAdvert(advertOf(a.hostId, 64)) }
    expect(await verifySignedAdvert(TOPIC, altered)).toMatchObject({ ok: false, reason: 'signature does not match', hostId: a.hostId })
    // b's advert signed by a: a cannot speak for b.
    const forged = await signedBy(a, advertOf(b.hostId))
    expect(await verifySignedAdvert(TOPIC, forged)).toMatchObject({ ok: false, reason: 'signature does not match', hostId: b.hostId })
    // Signed for another cluster's topic.
    expect((await verifySignedAdvert('/meshvirt/other/adverts/1', good)).ok).toBe(false)
    expect(await verifySignedAdvert(TOPIC, { ...good, signature: good.signature.subarray(0, 10) })).toMatchObject({ ok: false, reason: 'seqno or signature of the wrong length' })
    expect((await verifySignedAdvert(TOPIC, { ...good, data: new Uint8Array([1, 2, 3]) })).ok).toBe(false)
  })

  it('keeps copies, not views that would hold the frame they came in', () => {
    const frame = new Uint8Array(64 * 1024)
    const store = new SignedAdverts()
    store.remember('h1', { data: frame.subarray(100, 300), seqno: frame.subarray(0, 8), signature: frame.subarray(8, 72) })
    const kept = store.get('h1')
    expect(kept?.data.byteLength).toBe(200)
    expect(kept?.data.buffer.byteLength).toBe(200)
    expect(kept?.signature.buffer.byteLength).toBe(64)
    expect(kept?.seqno.buffer.byteLength).toBe(8)
  })

  it('pages go through every host once, in host-id order, within the byte bound', () => {
    const store = new SignedAdverts()
    const ids = Array.from({ length: 30 }, (_, i) => `h${String(i).padStart(2, '0')}`)
    for (const id of [...ids].reverse()) store.remember(id, { data: new Uint8Array(100), seqno: new Uint8Array(8), signature: new Uint8Array(64) })
    store.forget('h05')
    const seen: string[] = []
    let after = ''
    for (let pages = 1; ; pages++) {
      const page = store.page(after, 250, (id) => id !== 'h07')
      expect(page.adverts.length).toBeLessThanOrEqual(2)
      seen.push(...page.adverts.map((a) => a.hostId))
      if (!page.more) break
      after = page.adverts.at(-1)?.hostId ?? ''
      expect(pages).toBeLessThan(30)
    }
    expect(seen).toEqual(ids.filter((id) => id !== 'h05' && id !== 'h07'))
  })
})

describe('view sync between two ViewSyncs', () => {
  async function pair (adverts: SignedAdvert[], pageBytes: number): Promise<{ server: ViewSync, client: ViewSync, applied: HostAdvert[], server_: HostIdentity }> {
    const server_ = await generateIdentity()
    const store = new SignedAdverts()
    for (const s of adverts) {
      const checked = await verifySignedAdvert(TOPIC, s)
      store.remember(checked.ok ? checked.advert.hostId : `bad-${store.size}`, s)
    }
    const server = new ViewSync({
      topic: TOPIC,
      selfId: server_.hostId,
      adverts: store,
      passOn: () => true,
      self: () => ({ data: encodeHostAdvert(advertOf(server_.hostId)), seqno: seqnoBytes(1n) }),
      sign: (bytes) => server_.privateKey.sign(bytes),
      apply: () => true,
      request: async () => { throw new Error('the server does not pull') },
      log: () => {},
      pageBytes
    })
    const applied: HostAdvert[] = []
    const client = new ViewSync({
      topic: TOPIC,
      selfId: (await generateIdentity()).hostId,
      adverts: new SignedAdverts(),
      passOn: () => true,
      self: () => { throw new Error('not asked') },
      sign: () => { throw new Error('not asked') },
      apply: (a) => { applied.push(a); return true },
      request: async (_peer, _protocol, request) => await server.serve(request),
      log: () => {}
    })
    return { server, client, applied, server_ }
  }

  it('a pull over many pages brings every host, the answerer included, once', async () => {
    const hosts = await Promise.all(Array.from({ length: 40 }, async () => await generateIdentity()))
    const adverts = await Promise.all(hosts.map(async (h) => await signedBy(h, advertOf(h.hostId))))
    const { client, applied, server_ } = await pair(adverts, 1500)
    const r = await client.pull(server_.hostId)
    expect(r.pages).toBeGreaterThanOrEqual(4)
    expect(r).toMatchObject({ applied: 41, rejected: 0 })
    expect(applied.map((a) => a.hostId).sort()).toEqual([...hosts.map((h) => h.hostId), server_.hostId].sort())
  })

  it('a forged advert in a page is counted and not applied; the rest are', async () => {
    const [a, b, c] = await Promise.all([generateIdentity(), generateIdentity(), generateIdentity()])
    const forged = await signedBy(a, advertOf(b.hostId, 64))
    const { client, applied, server_ } = await pair([await signedBy(a, advertOf(a.hostId)), forged, await signedBy(c, advertOf(c.hostId))], 1 << 20)
    const r = await client.pull(server_.hostId)
    expect(r).toMatchObject({ applied: 3, rejected: 1 })
    expect(applied.map((x) => x.hostId).sort()).toEqual([a.hostId, c.hostId, server_.hostId].sort())
    expect(client.counters.rejected).toBe(1)
  })
})

describe('view sync in a cluster of real nodes whose heartbeats are a minute apart', () => {
  const cluster = new TestCluster()
  afterEach(async () => { await cluster.stopAll() })

  it('a newcomer sees every host within seconds, not at their next heartbeat', async () => {
    const timing = { ...LOCAL_TEST_TIMING, heartbeatIntervalMs: 60_000 }
    for (let i = 0; i < 4; i++) await cluster.start(undefined, { timing })
    const first = [...cluster.nodes]
    await pollUntil(() => first.every((n) => n.view.liveCount() === 4), { timeoutMs: 10_000, intervalMs: 20, what: 'the first 4 to see each other' })
    // Past gossipsub's message cache (5 gossip heartbeats of 200 ms): no IHAVE offers those adverts any more.
    await new Promise((resolve) => setTimeout(resolve, 1_500))

    const startedAt = Date.now()
    const newcomer = await cluster.start(undefined, { timing })
    await pollUntil(() => newcomer.view.liveCount() === 5, { timeoutMs: 10_000, intervalMs: 20, what: 'the newcomer to see all 5 hosts' })
    const tookMs = Date.now() - startedAt
    expect(tookMs).toBeLessThan(5_000)
    await pollUntil(() => newcomer.stats().viewSync?.pulls === 1, { timeoutMs: 5_000, intervalMs: 20, what: 'the pull to end' })
    const stats = newcomer.stats().viewSync
    expect(stats?.rejected).toBe(0)
    // It heard of most hosts by the pull: with heartbeats a minute apart nothing else would tell it.
    expect(stats?.pulled).toBeGreaterThanOrEqual(3)
    expect(first[0]?.stats().viewSync?.served).toBeGreaterThanOrEqual(1)
    // And the others see the newcomer: its first advert is flooded.
    await pollUntil(() => first.every((n) => n.view.get(newcomer.hostId)?.liveness === 'alive'), { timeoutMs: 5_000, intervalMs: 20, what: 'every host to see the newcomer' })
  })
})
