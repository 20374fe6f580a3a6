import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
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

  describe('on a fake clock', () => {
    beforeEach(() => { vi.useFakeTimers({ now: 1_000_000 }) })
    afterEach(() => { vi.useRealTimers() })

    /** A publisher on the fake clock; `recipients` says how many peers each advert reaches. */
    function publisher (timing: { publishDebounceMs: number, publishDebounceMaxMs: number }, recipients: () => number = () => 1): { p: AdvertPublisher, sent: number[], errors: Error[] } {
      const sent: number[] = []
      const errors: Error[] = []
      const p = new AdvertPublisher({
        hostId: HOST, incarnation: 1, content: emptyAdvertContent(),
        timing: { heartbeatIntervalMs: 3_600_000, maxAdvertsPerSecond: 100, ...timing },
        addrs: () => [], clusterSize: () => 1,
        send: async () => { sent.push(Date.now()); return { recipients: recipients() } },
        onAdvert: () => {}, onError: (err) => { errors.push(err as Error) }
      })
      return { p, sent, errors }
    }

    it('widens the coalescing window while a burst lasts, and narrows it after a quiet one', async () => {
      const { p, sent } = publisher({ publishDebounceMs: 250, publishDebounceMaxMs: 2000 })
      p.start()
      // A change every 50 ms for 6 s: a storm of 120 changes.
      for (let i = 0; i < 120; i++) {
        await vi.advanceTimersByTimeAsync(50)
        p.update({ hostname: `h${i}` })
      }
      await vi.advanceTimersByTimeAsync(5000)
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
    })

    it('does not widen while its adverts reach nobody, and gives a first subscriber the news within the first window', async () => {
      let recipients = 0
      const { p, sent } = publisher({ publishDebounceMs: 20, publishDebounceMaxMs: 2000 }, () => recipients)
      p.start()
      for (let i = 0; i < 12; i++) { // a host starting alone: its parts change the advert in a burst
        p.update({ hostname: `start-${i}` })
        await vi.advanceTimersByTimeAsync(8)
      }
      expect(sent.length).toBeGreaterThan(2) // published, through windows that stayed narrow
      expect(p.coalesceWindowMs).toBe(20) // nobody heard it: not a burst worth spacing
      recipients = 1
      for (let i = 0; i < 12; i++) { // heard now: the burst widens the window
        p.update({ hostname: `heard-${i}` })
        await vi.advanceTimersByTimeAsync(8)
      }
      expect(p.coalesceWindowMs).toBeGreaterThan(20)
      recipients = 0
      await vi.advanceTimersByTimeAsync(2000) // the last advert of the burst reached nobody (the peers left)
      p.update({ hostname: 'alone-again' })
      await vi.advanceTimersByTimeAsync(1)
      const before = sent.length
      p.update({ hostname: 'news' })
      p.onSubscriber() // a first subscriber: the news goes within the first window, not a wide one
      await vi.advanceTimersByTimeAsync(20)
      expect(sent.length).toBe(before + 1)
      expect(p.current().hostname).toBe('news')
      expect(p.coalesceWindowMs).toBe(20)
      p.stop()
    })

    it('leaves content peers would refuse unpublished, says why, and keeps advertising the last good one', async () => {
      const { p, sent, errors } = publisher({ publishDebounceMs: 250, publishDebounceMaxMs: 2000 })
      p.start()
      p.update({ hostname: 'good' })
      await vi.advanceTimersByTimeAsync(250)
      expect(p.current().hostname).toBe('good')
      const before = sent.length
      p.update({ hostname: 'x'.repeat(100_000) }) // over the limit peers enforce
      await vi.advanceTimersByTimeAsync(2000) // the end of the (widened) window
      expect(errors).toHaveLength(1)
      expect(errors[0]).toMatchObject({ code: 'INVALID_ADVERT' })
      expect(errors[0]?.message).toMatch(/^host advert refused: .*hostname.*; not published, the previous content stays$/)
      expect(p.current().hostname).toBe('good') // what went out instead: the last good content
      expect(sent).toHaveLength(before + 1)
      p.update({ cpuModel: 'model-after' }) // the next change starts from the good content
      await vi.advanceTimersByTimeAsync(2000)
      expect(p.current()).toMatchObject({ hostname: 'good', cpuModel: 'model-after' })
      expect(errors).toHaveLength(1)
      p.stop()
    })
  })
})
