import { describe, expect, it } from 'vitest'
import { AdvertPublisher } from '../src/advert-publisher.js'
import { emptyAdvertContent } from '../src/host-advert.js'

const HOST = '12D3KooWGzh8Ysxq7dV7oPj4ppAWP6kHL3yFmMH5g3ZyTzrW1dJx'

describe('advert publisher', () => {
  it('coalesces a burst of changes, but publishes an urgent one at once', () => {
    let now = 1_000_000
    const sent: number[] = []
    const p = new AdvertPublisher({
      hostId: HOST, incarnation: 1, content: emptyAdvertContent(),
      timing: { heartbeatIntervalMs: 60_000, maxAdvertsPerSecond: 100, publishDebounceMs: 250 },
      addrs: () => [], clusterSize: () => 1,
      send: async () => { sent.push(now); return { recipients: 1 } },
      onAdvert: () => {}, onError: (err) => { throw err }, clock: () => now
    })
    p.start()
    expect(sent).toHaveLength(1)
    now += 10
    p.update({ hostname: 'a' })
    expect(sent).toHaveLength(1) // inside the window: coalesced
    now += 10
    p.update({ hostname: 'b' }, { urgent: true })
    expect(sent).toHaveLength(2) // now, and the pending one with it
    expect(p.current().hostname).toBe('b')
    p.stop()
  })

  it('leaves a hint to the next heartbeat, through the mesh', async () => {
    const sent: Array<{ hostname: string, flood: boolean }> = []
    let latest = ''
    const p = new AdvertPublisher({
      hostId: HOST, incarnation: 1, content: emptyAdvertContent(),
      timing: { heartbeatIntervalMs: 50, maxAdvertsPerSecond: 100, publishDebounceMs: 0 },
      addrs: () => [], clusterSize: () => 1,
      send: async (_bytes, flood) => { sent.push({ hostname: latest, flood }); return { recipients: 1 } },
      onAdvert: (a) => { latest = a.hostname }, onError: (err) => { throw err }
    })
    p.start()
    expect(sent).toHaveLength(1)
    p.update({ hostname: 'loaded' }, { hint: true })
    expect(sent).toHaveLength(1) // not now
    await new Promise((resolve) => setTimeout(resolve, 80))
    p.stop()
    expect(sent[1]).toEqual({ hostname: 'loaded', flood: false }) // the heartbeat carried it
    p.update({ hostname: 'changed' })
    expect(sent).toHaveLength(2) // stopped: nothing more
  })

  it('widens the coalescing window while a burst lasts, and narrows it after a quiet one', async () => {
    let now = 1_000_000
    const sent: number[] = []
    const timers: Array<{ at: number, fn: () => void }> = []
    const realSetTimeout = globalThis.setTimeout
    globalThis.setTimeout = ((fn: () => void, ms: number) => { const t = { at: now + ms, fn }; timers.push(t); return t }) as unknown as typeof setTimeout
    const realClear = globalThis.clearTimeout
    globalThis.clearTimeout = ((t: unknown) => { const i = timers.indexOf(t as { at: number, fn: () => void }); if (i >= 0) timers.splice(i, 1) }) as typeof clearTimeout
    const advance = async (ms: number): Promise<void> => {
      const until = now + ms
      for (;;) {
        await new Promise((resolve) => setImmediate(resolve)) // send()'s recipients land before the next timer
        const due = timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at)[0]
        if (due === undefined) break
        timers.splice(timers.indexOf(due), 1)
        now = due.at
        due.fn()
      }
      now = until
    }
    try {
      const p = new AdvertPublisher({
        hostId: HOST, incarnation: 1, content: emptyAdvertContent(),
        timing: { heartbeatIntervalMs: 3_600_000, maxAdvertsPerSecond: 100, publishDebounceMs: 250, publishDebounceMaxMs: 2000 },
        addrs: () => [], clusterSize: () => 1,
        send: async () => { sent.push(now); return { recipients: 1 } },
        onAdvert: () => {}, onError: (err) => { throw err }, clock: () => now
      })
      p.start()
      // A change every 50 ms for 6 s: a storm of 120 changes.
      for (let i = 0; i < 120; i++) {
        await advance(50)
        p.update({ hostname: `h${i}` })
      }
      await advance(5000)
      const gaps = sent.slice(1).map((t, i) => t - (sent[i] as number))
      // The start's advert opened a window: the burst waits for its end, then each window is twice as long.
      expect(gaps.slice(0, 4)).toEqual([250, 500, 1000, 2000])
      expect(Math.max(...gaps.slice(5))).toBeLessThanOrEqual(2000)
      expect(sent.length).toBeLessThan(12) // not 24, as a fixed 250 ms window would send
      expect(p.current().hostname).toBe('h119') // the last change is published
      expect(p.coalesceWindowMs).toBe(2000)
      // Quiet for longer than the window: the next change goes out at once, and the window is back at 250 ms.
      const before = sent.length
      p.update({ hostname: 'calm' })
      expect(sent).toHaveLength(before + 1)
      expect(p.coalesceWindowMs).toBe(250)
      p.stop()
    } finally {
      globalThis.setTimeout = realSetTimeout
      globalThis.clearTimeout = realClear
    }
  })

  it('does not widen while its adverts reach nobody, and gives a first subscriber the news within the first window', async () => {
    let now = 1_000_000
    let recipients = 0
    const sent: number[] = []
    const p = new AdvertPublisher({
      hostId: HOST, incarnation: 1, content: emptyAdvertContent(),
      timing: { heartbeatIntervalMs: 3_600_000, maxAdvertsPerSecond: 100, publishDebounceMs: 20, publishDebounceMaxMs: 2000 },
      addrs: () => [], clusterSize: () => 1,
      send: async () => { sent.push(now); return { recipients } },
      onAdvert: () => {}, onError: (err) => { throw err }, clock: () => now
    })
    const settle = async (ms: number): Promise<void> => {
      await new Promise((resolve) => setTimeout(resolve, ms))
      now += ms
    }
    p.start()
    for (let i = 0; i < 12; i++) { // a host starting alone: its parts change the advert in a burst
      p.update({ hostname: `start-${i}` })
      await settle(8)
    }
    expect(p.coalesceWindowMs).toBe(20) // nobody heard it: not a burst worth spacing
    recipients = 1
    for (let i = 0; i < 12; i++) { // heard now: the burst widens the window
      p.update({ hostname: `heard-${i}` })
      await settle(8)
    }
    expect(p.coalesceWindowMs).toBeGreaterThan(20)
    recipients = 0
    await settle(200) // the last advert of the burst reached nobody (the peers left)
    p.update({ hostname: 'alone-again' })
    const before = sent.length
    p.onSubscriber() // a first subscriber: the news goes within the first window, not a wide one
    await settle(60)
    expect(sent.length).toBeGreaterThan(before)
    expect(p.coalesceWindowMs).toBe(20)
    p.stop()
  })
})
