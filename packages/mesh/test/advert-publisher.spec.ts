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
})
