import { describe, expect, it } from 'vitest'
import { ClusterView, emptyAdvertContent, type ClusterViewEvent, type HostAdvert } from '../src/index.js'

const SELF = '12D3KooWSelfSelfSelfSelfSelfSelfSelfSelfSelfSelfSelf'
const PEER = '12D3KooWPeerPeerPeerPeerPeerPeerPeerPeerPeerPeerPeer'
const HB = 1000
const TIMING = { suspectAfterHeartbeats: 2, probeIntervalMs: 500, suspicionMult: 1, suspicionMaxTimeoutMult: 4, expectedConfirmations: 2, deadRetentionMs: 60_000 }

function advert (hostId: string, incarnation: number, seq: number, over: Partial<HostAdvert> = {}): HostAdvert {
  return { ...emptyAdvertContent(), hostId, incarnation, seq, addrs: [], sentAtMs: 0, heartbeatIntervalMs: HB, ...over }
}

function setup (slack = 0): { view: ClusterView, clock: { now: number }, events: string[] } {
  const clock = { now: 0 }
  // Slack 0: every host's own missed-heartbeat deadline at exactly suspectAfterHeartbeats heartbeats.
  const view = new ClusterView({ selfId: SELF, timing: TIMING, clock: () => clock.now, random: () => slack })
  const events: string[] = []
  view.subscribe((e: ClusterViewEvent) => { events.push(`${e.type}:${e.host.hostId === SELF ? 'self' : 'peer'}`) })
  view.apply(advert(SELF, 1, 1))
  view.apply(advert(PEER, 5, 1))
  return { view, clock, events }
}

describe('ClusterView', () => {
  it('keeps the newest advert by (incarnation, seq)', () => {
    const { view, events } = setup()
    expect(view.apply(advert(PEER, 5, 3, { hostname: 'b' }))).toBe('updated')
    expect(view.apply(advert(PEER, 5, 2))).toBe('stale')
    expect(view.apply(advert(PEER, 5, 3))).toBe('stale')
    expect(view.apply(advert(PEER, 4, 99))).toBe('stale')
    expect(view.apply(advert(PEER, 5, 4, { hostname: 'b' }))).toBe('refreshed')
    expect(view.get(PEER)?.advert.seq).toBe(4)
    expect(view.isStale(PEER, 5, 4)).toBe(true)
    expect(view.isStale(PEER, 6, 0)).toBe(false)
    expect(events).toEqual(['joined:self', 'joined:peer', 'updated:peer'])
  })

  it('suspects a silent host, probes it, and declares it dead after the minimum timeout when probes fail', () => {
    const { view, clock, events } = setup()
    clock.now = 2000
    expect(view.tick()).toEqual([])
    clock.now = 2001
    expect(view.tick()).toEqual([PEER]) // suspect, first probe
    expect(view.get(PEER)?.liveness).toBe('suspect')
    view.probeResult(PEER, false)
    clock.now = 2400
    expect(view.tick()).toEqual([]) // next probe one probe interval later
    clock.now = 2501
    expect(view.tick()).toEqual([PEER])
    expect(view.get(PEER)?.liveness).toBe('suspect')
    view.probeResult(PEER, false)
    // two confirmations = k: timeout = min = 1 × max(1, log10 2) × 500 ms, already elapsed
    view.tick()
    expect(view.get(PEER)?.liveness).toBe('dead')
    expect(events.slice(2)).toEqual(['suspect:peer', 'dead:peer'])
  })

  it('spreads its own missed-heartbeat deadline by a slack under one heartbeat, drawn per host', () => {
    const { view, clock } = setup(0.5)
    clock.now = 2001
    expect(view.tick()).toEqual([])
    clock.now = 2500
    expect(view.tick()).toEqual([])
    clock.now = 2501
    expect(view.tick()).toEqual([PEER])
    expect(view.get(PEER)?.liveness).toBe('suspect')
  })

  it('does not probe a host it suspects on a notice that came before its own deadline', () => {
    const { view, clock } = setup(0.9)
    const OTHER = '12D3KooWOtherOtherOtherOtherOtherOtherOtherOtherOthe'
    clock.now = 2100 // another host, with a smaller slack, missed the heartbeats first and reported it
    expect(view.suspect({ hostId: PEER, incarnation: 5, seq: 1, reporterId: OTHER, sentAtMs: 0 })).toBe('suspected')
    clock.now = 3000 // past this host's own deadline (2,900 ms)
    expect(view.tick()).toEqual([])
  })

  it('waits the maximum timeout while probes are inconclusive', () => {
    const { view, clock } = setup()
    clock.now = 2001
    view.tick()
    clock.now = 2001 + 1999
    view.tick()
    expect(view.get(PEER)?.liveness).toBe('suspect')
    clock.now = 2001 + 2000
    view.tick()
    expect(view.get(PEER)?.liveness).toBe('dead')
  })

  it('folds in suspicion notices: distinct reporters confirm, self asks for a refutation', () => {
    const { view, clock, events } = setup()
    const OTHER = '12D3KooWOtherOtherOtherOtherOtherOtherOtherOtherOthe'
    const notice = (reporterId: string, incarnation = 5): Parameters<ClusterView['suspect']>[0] => ({ hostId: PEER, incarnation, seq: 1, reporterId, sentAtMs: 0 })
    expect(view.suspect(notice(OTHER, 4))).toBe('ignored') // about an older incarnation
    expect(view.suspect(notice(OTHER))).toBe('suspected')
    expect(view.suspect(notice(OTHER))).toBe('ignored') // counted once
    expect(view.suspect(notice(SELF))).toBe('confirmed')
    expect(view.suspect({ ...notice(OTHER), hostId: SELF })).toBe('refute')
    expect(view.suspect({ ...notice(OTHER), hostId: '12D3KooWUnknownUnknownUnknownUnknownUnknownUnknownUn' })).toBe('ignored')
    // two reporters = k: dead after the minimum timeout
    clock.now = 499
    view.tick()
    expect(view.get(PEER)?.liveness).toBe('suspect')
    clock.now = 500
    view.tick()
    expect(view.get(PEER)?.liveness).toBe('dead')
    expect(events.slice(2)).toEqual(['suspect:peer', 'dead:peer'])
  })

  it('a notice older than the advert held (the refutation came first) does not make the host suspect again', () => {
    const { view, events } = setup()
    const OTHER = '12D3KooWOtherOtherOtherOtherOtherOtherOtherOtherOthe'
    // The suspect heard a notice elsewhere and refuted with seq 2; that reached this host before the notice.
    expect(view.apply(advert(PEER, 5, 2))).toBe('refreshed')
    expect(view.suspect({ hostId: PEER, incarnation: 5, seq: 1, reporterId: OTHER, sentAtMs: 0 })).toBe('ignored')
    expect(view.get(PEER)?.liveness).toBe('alive')
    // A reporter that held the same advert still counts.
    expect(view.suspect({ hostId: PEER, incarnation: 5, seq: 2, reporterId: OTHER, sentAtMs: 0 })).toBe('suspected')
    expect(events.slice(2)).toEqual(['suspect:peer'])
  })

  it('a newer advert refutes a suspicion', () => {
    const { view, events } = setup()
    view.suspect({ hostId: PEER, incarnation: 5, seq: 1, reporterId: SELF, sentAtMs: 0 })
    expect(view.apply(advert(PEER, 5, 2))).toBe('refreshed')
    expect(view.get(PEER)?.liveness).toBe('alive')
    expect(events.slice(2)).toEqual(['suspect:peer', 'alive:peer'])
  })

  it('a probe answer refutes the suspicion', () => {
    const { view, clock, events } = setup()
    clock.now = 2001
    view.tick()
    view.probeResult(PEER, true)
    expect(view.get(PEER)?.liveness).toBe('alive')
    expect(view.get(PEER)?.lastHeardMs).toBe(2001)
    expect(events.slice(2)).toEqual(['suspect:peer', 'alive:peer'])
  })

  it('a dead host that restarts comes back alive with its new incarnation', () => {
    const { view, clock } = setup()
    const seen: ClusterViewEvent[] = []
    view.subscribe((e) => seen.push(e))
    clock.now = 2001
    view.tick()
    clock.now = 5000
    view.tick()
    expect(view.get(PEER)?.liveness).toBe('dead')
    expect(view.apply(advert(PEER, 6, 1))).toBe('updated')
    expect(view.get(PEER)?.liveness).toBe('alive')
    expect(view.get(PEER)?.advert.incarnation).toBe(6)
    expect(seen.map((e) => e.type)).toEqual(['suspect', 'dead', 'updated', 'alive'])
    const alive = seen[3]
    expect(alive?.type === 'alive' && alive.restarted && alive.previous === 'dead').toBe(true)
  })

  it('forgets a host dead for longer than the retention time', () => {
    const { view, clock, events } = setup()
    clock.now = 2001
    view.tick()
    clock.now = 7000
    view.tick()
    clock.now = 7000 + 60_001
    view.tick()
    expect(view.get(PEER)).toBeUndefined()
    expect(events.at(-1)).toBe('removed:peer')
  })

  it('never suspects itself and counts live hosts', () => {
    const { view, clock } = setup()
    expect(view.liveCount()).toBe(2)
    clock.now = 2001
    view.tick()
    expect(view.liveCount()).toBe(2) // a suspect still counts
    clock.now = 100_000
    view.tick()
    expect(view.get(SELF)?.liveness).toBe('alive')
    expect(view.get(PEER)?.liveness).toBe('dead')
    expect(view.liveCount()).toBe(1)
  })

  it('a throwing listener does not stop the others', () => {
    const { view } = setup()
    let called = false
    view.subscribe(() => { throw new Error('boom') })
    view.subscribe(() => { called = true })
    view.apply(advert(PEER, 7, 1))
    expect(called).toBe(true)
  })
})
