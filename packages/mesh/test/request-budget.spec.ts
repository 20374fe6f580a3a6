/**
 * Issue 22, finding 5: a peer that parks nearly complete 4 MiB requests on many open streams must
 * not pin unbounded memory. ByteBudget's rule as a table, then real nodes on loopback.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { byteStream } from '@libp2p/utils'
import { ByteBudget, type ByteBudgetStats, type MeshNode } from '../src/index.js'
import { decodeLengthPrefix } from '../src/budgeted-frame.js'
import { pollUntil } from '@meshvirt/testkit/poll'
import { TestCluster } from './helpers.js'

const MIB = 2 ** 20
const ECHO = '/meshvirt/test-budget/1.0.0'

describe('ByteBudget', () => {
  it.each([
    // [case, held by the peer, held in all, asked, answer]
    ['fits the share and the total', 0, 0, 4 * MIB, 'ok'],
    ['exactly the share', 12 * MIB, 12 * MIB, 4 * MIB, 'ok'],
    ['past the share', 13 * MIB, 13 * MIB, 4 * MIB, 'peer'],
    ['past the total (a large frame)', 0, 62 * MIB, 4 * MIB, 'total'],
    ['a small frame passes a full total, within the share', 0, 64 * MIB, 64 * 1024, 'ok'],
    ['a small frame past the share', 16 * MIB - 10, 16 * MIB, 64 * 1024, 'peer']
  ])('%s', (_case, mine, others, asked, answer) => {
    const b = new ByteBudget({ perPeerBytes: 16 * MIB, totalBytes: 64 * MIB, smallFrameBytes: 64 * 1024 })
    if (mine > 0) expect(b.take('p', mine)).toBe('ok')
    for (let left = others - mine, i = 0; left > 0; i++) { const n = Math.min(left, 16 * MIB); expect(b.take(`o${i}`, n)).toBe('ok'); left -= n }
    const before = b.stats().bytes
    expect(b.take('p', asked)).toBe(answer)
    expect(b.stats().bytes).toBe(answer === 'ok' ? before + asked : before)
  })

  it('gives back what was taken, never more, and forgets a peer holding nothing', () => {
    const b = new ByteBudget()
    b.take('p', 100)
    b.give('p', 60)
    expect(b.heldBy('p')).toBe(40)
    b.give('p', 1000)
    expect(b.take('q', 0)).toBe('ok')
    expect(b.stats()).toMatchObject({ bytes: 0, peers: 0, peakBytes: 100 })
  })

  it.each([
    [[0x00], [0, 1]],
    [[0x7f], [127, 1]],
    [[0x80, 0x80, 0x01], [16384, 3]],
    [[0xff, 0xff, 0xff, 0x01], [4 * MIB - 1, 4]],
    [[0x80], undefined]
  ])('length prefix %j → %j', (bytes, expected) => {
    expect(decodeLengthPrefix(Uint8Array.from(bytes))).toEqual(expected)
  })

  it('refuses a prefix that never ends', () => {
    expect(() => decodeLengthPrefix(new Uint8Array(10).fill(0x80))).toThrow(/no length/)
  })
})

describe('parked partial requests (real nodes)', () => {
  const cluster = new TestCluster()
  afterEach(async () => { await cluster.stopAll() })

  /** Opens `n` streams to `to` and on each sends a 4 MiB length prefix and all but the last byte. */
  async function park (from: MeshNode, to: MeshNode, n: number): Promise<number> {
    const body = new Uint8Array(4 * MIB - 1)
    const prefix = Uint8Array.from([0x80, 0x80, 0x80, 0x02]) // 4 MiB
    let sent = 0
    await Promise.all(Array.from({ length: n }, async () => {
      try {
        // No signal on the dial: libp2p aborts the stream when it fires, and these must stay parked.
        const stream = await from.libp2p.dialProtocol(to.peerId, ECHO)
        const bytes = byteStream(stream)
        await bytes.write(prefix)
        for (let at = 0; at < body.byteLength; at += 64 * 1024) await bytes.write(body.subarray(at, Math.min(body.byteLength, at + 64 * 1024)))
        sent++
      } catch {
        // Refused over budget: the victim reset the stream (that is the point).
      }
    }))
    return sent
  }

  it('stay under the per-peer and total budgets, let small requests through, and are given back when the peer leaves', async () => {
    // LAN timing: under the test's own load the local preset's short suspicion can declare a busy
    // peer dead, and the victim then hangs up on it (which would also free its parked bytes).
    const lan = { timing: 'lan' as const }
    const victim = await cluster.start(undefined, { ...lan, requestBuffer: { perPeerBytes: 16 * MIB, totalBytes: 24 * MIB } })
    const m1 = await cluster.start(undefined, lan)
    const m2 = await cluster.start(undefined, lan)
    const honest = await cluster.start(undefined, lan)
    await pollUntil(() => [m1, m2, honest].every((n) => victim.view.get(n.hostId) !== undefined), { timeoutMs: 10_000, intervalMs: 20, what: 'the victim to see every peer' })
    await victim.handle(ECHO, async (req) => req, { timeoutMs: 60_000 })
    const before = process.memoryUsage().arrayBuffers

    // Two insiders park 20 nearly complete 4 MiB requests each: the first gets its share (4), the
    // second what the total leaves it (2); the rest are reset at their length prefix.
    await park(m1, victim, 20)
    await pollUntilValue(() => victim.stats().requestBuffer as ByteBudgetStats, (s) => s.bytes === 16 * MIB && s.refused.peer >= 1, 'm1 to hold its share and be refused more')
    await park(m2, victim, 20)
    const full = await pollUntilValue(() => victim.stats().requestBuffer as ByteBudgetStats, (s) => s.bytes === 24 * MIB && s.peers === 2 && s.refused.total >= 1, 'm2 to fill the total and be refused more')
    console.log(`parked 4 MiB requests: ${full.bytes / MIB} MiB held (share 16, total 24), refused ${full.refused.peer} over the share and ${full.refused.total} over the total; arrayBuffers +${((process.memoryUsage().arrayBuffers - before) / MIB).toFixed(0)} MiB in this process (senders included)`)
    expect(full.peakBytes).toBeLessThanOrEqual(24 * MIB)

    // A legitimate small request still gets through; a large one waits for room.
    expect(new TextDecoder().decode(await honest.request(victim.hostId, ECHO, new TextEncoder().encode('still here'), { timeoutMs: 5000 }))).toBe('still here')
    await expect(honest.request(victim.hostId, ECHO, new Uint8Array(MIB), { timeoutMs: 5000 })).rejects.toMatchObject({ code: 'REQUEST_FAILED' })

    // The peers leave: their streams are reset, every byte comes back.
    await m1.stop()
    await m2.stop()
    const end = await pollUntilValue(() => victim.stats().requestBuffer as ByteBudgetStats, (s) => s.bytes === 0 && s.peers === 0, 'every byte to come back')
    // The total, plus the honest peer's small request (small frames are held to their share only).
    expect(end.peakBytes).toBeLessThanOrEqual(24 * MIB + 64 * 1024)
    // Room for an honest large request.
    expect((await honest.request(victim.hostId, ECHO, new Uint8Array(MIB), { timeoutMs: 5000 })).byteLength).toBe(MIB)
    expect(victim.stats().requestBuffer?.bytes).toBe(0)
  }, 60_000)
})

async function pollUntilValue<T> (read: () => T, ok: (v: T) => boolean, what: string, timeoutMs = 20_000): Promise<T> {
  let last = read()
  await pollUntil(() => { last = read(); return ok(last) }, { timeoutMs, intervalMs: 20, what: `${what} (last: ${JSON.stringify(last)})` })
  return last
}
