import { describe, expect, it } from 'vitest'
import { DepartedHosts, emptyAdvertContent, type ClusterViewEvent, type HostAdvert, type HostEntry, type Liveness } from '../src/index.js'

const A = '12D3KooWAaaaAaaaAaaaAaaaAaaaAaaaAaaaAaaaAaaaAaaaAaaa'
const B = '12D3KooWBbbbBbbbBbbbBbbbBbbbBbbbBbbbBbbbBbbbBbbbBbbb'

function entry (hostId: string, liveness: Liveness, over: Partial<HostAdvert> = {}): HostEntry {
  const advert: HostAdvert = { ...emptyAdvertContent(), hostId, incarnation: 1, seq: 1, addrs: ['/ip4/10.0.0.1/tcp/7400'], sentAtMs: 0, heartbeatIntervalMs: 1000, ...over }
  return { hostId, advert, liveness, lastHeardMs: 0, livenessSinceMs: 0, self: false }
}

const dead = (hostId: string, over: Partial<HostAdvert> = {}): ClusterViewEvent => ({ type: 'dead', host: entry(hostId, 'dead', over) })

describe('DepartedHosts', () => {
  it('remembers a host declared dead with its addresses, and forgets it once it is heard again', () => {
    const clock = { now: 1000 }
    const departed = new DepartedHosts(60_000, () => clock.now, () => 0)
    departed.onViewEvent(dead(A))
    expect(departed.pick(new Set())).toEqual({ hostId: A, addrs: ['/ip4/10.0.0.1/tcp/7400'], sinceMs: 1000 })
    departed.onViewEvent({ type: 'alive', host: entry(A, 'alive'), previous: 'dead', restarted: false })
    expect(departed.has(A)).toBe(false)
    departed.onViewEvent(dead(A))
    departed.onViewEvent({ type: 'removed', host: entry(A, 'dead') })
    expect(departed.has(A)).toBe(true)
    departed.onViewEvent({ type: 'joined', host: entry(A, 'alive') })
    expect(departed.size).toBe(0)
  })

  it('never remembers a host that left on purpose or has no address', () => {
    const departed = new DepartedHosts(60_000)
    departed.onViewEvent(dead(A, { state: 'leaving' }))
    departed.onViewEvent(dead(B, { addrs: [] }))
    departed.onViewEvent({ type: 'dead', host: { ...entry(B, 'dead'), self: true } })
    expect(departed.size).toBe(0)
  })

  it('draws only hosts not connected, and forgets a host tried for longer than the timeout', () => {
    const clock = { now: 0 }
    const departed = new DepartedHosts(60_000, () => clock.now, () => 0.99)
    departed.onViewEvent(dead(A))
    clock.now = 30_000
    departed.onViewEvent(dead(B))
    expect(departed.pick(new Set([B]))?.hostId).toBe(A)
    expect(departed.pick(new Set())?.hostId).toBe(B)
    clock.now = 60_001
    expect(departed.pick(new Set())?.hostId).toBe(B)
    expect(departed.has(A)).toBe(false)
    clock.now = 90_001
    expect(departed.pick(new Set())).toBeUndefined()
    expect(departed.size).toBe(0)
  })
})
