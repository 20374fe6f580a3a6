/**
 * Issue 22, finding 5: suspicion notices flooded by one host kept a live host "suspect" 97 % of the
 * time. The rule (reporter-credit.ts) as a table, then the ClusterView under a simulated flood.
 */
import { describe, expect, it } from 'vitest'
import { ClusterView, emptyAdvertContent, type HostAdvert } from '../src/index.js'
import { MAX_TRACKED_REPORTERS, ReporterCredit } from '../src/reporter-credit.js'

const SELF = '12D3KooWSelfSelfSelfSelfSelfSelfSelfSelfSelfSelfSelf'
const PEER = '12D3KooWPeerPeerPeerPeerPeerPeerPeerPeerPeerPeerPeer'
const FLOOD = '12D3KooWFloodFloodFloodFloodFloodFloodFloodFloodFlo'
const OTHER = '12D3KooWOtherOtherOtherOtherOtherOtherOtherOtherOthe'
const THIRD = '12D3KooWThirdThirdThirdThirdThirdThirdThirdThirdThir'
const HB = 1000
const TIMING = { suspectAfterHeartbeats: 2, probeIntervalMs: 500, suspicionMult: 1, suspicionMaxTimeoutMult: 4, expectedConfirmations: 2, deadRetentionMs: 60_000 }

const advert = (hostId: string, seq: number): HostAdvert => ({ ...emptyAdvertContent(), hostId, incarnation: 5, seq, addrs: [], sentAtMs: 0, heartbeatIntervalMs: HB })
/** A notice as a reporter sends it: about the latest advert of PEER it holds (here: the one the view holds). */
const notice = (reporterId: string, view: ClusterView): Parameters<ClusterView['suspect']>[0] =>
  ({ hostId: PEER, incarnation: 5, seq: view.get(PEER)?.advert.seq ?? 1, reporterId, sentAtMs: 0 })

describe('ReporterCredit: who still counts alone', () => {
  const hold = 60_000
  const window = 10_000
  it.each([
    // [case, refuted reporters (at 0), notices [reporter, at], answer to the last]
    ['a reporter never refuted counts at once', [], [[OTHER, 5]], true],
    ['a refuted reporter alone does not', [FLOOD], [[FLOOD, 5]], false],
    ['nor does it by repeating itself', [FLOOD], [[FLOOD, 5], [FLOOD, 6], [FLOOD, 7]], false],
    ['a refuted reporter counts again after the hold', [FLOOD], [[FLOOD, hold]], true],
    ['two refuted reporters within the window confirm each other', [FLOOD, OTHER], [[FLOOD, 5], [OTHER, 6]], true],
    ['two refuted reporters further apart than the window do not', [FLOOD, OTHER], [[FLOOD, 5], [OTHER, 5 + window]], false],
    ['another reporter than the refuted one counts at once', [FLOOD], [[FLOOD, 5], [THIRD, 6]], true]
  ])('%s', (_case, refuted, notices, expected) => {
    const c = new ReporterCredit({ holdMs: hold, windowMs: window })
    c.refuted(refuted as string[], 0)
    let last = false
    for (const [r, at] of notices as Array<[string, number]>) last = c.suspects(r, at)
    expect(last).toBe(expected)
  })

  it('holds at most a bounded number of reporters, however many report', () => {
    const c = new ReporterCredit()
    c.refuted(Array.from({ length: 1000 }, (_, i) => `r${i}`), 0)
    for (let i = 0; i < 1000; i++) c.suspects(`r${999 - i}`, 1)
    expect(c.size()).toBeLessThanOrEqual(2 * MAX_TRACKED_REPORTERS)
  })
})

describe('ClusterView under a flood of suspicion notices from one host', () => {
  /**
   * 120 s in 10 ms steps: FLOOD reports PEER every 100 ms; PEER heartbeats every second and, like a
   * live host, refutes a suspicion with a newer advert 50 ms after it (mesh-node publishes at once).
   * Returns the fraction of steps PEER was suspect, and whether it was ever declared dead.
   */
  function flood ({ view, clock }: Setup): { suspectFraction: number, dead: boolean } {
    let seq = 1
    let refuteAt = Infinity
    let suspectSteps = 0
    let dead = false
    const steps = 12_000
    for (let i = 0; i < steps; i++) {
      clock.now = i * 10
      if (clock.now % 1000 === 0 || clock.now >= refuteAt) { view.apply(advert(PEER, ++seq)); refuteAt = Infinity }
      if (clock.now % 100 === 0 && view.suspect(notice(FLOOD, view)) === 'suspected') refuteAt = clock.now + 50
      view.tick()
      const l = view.get(PEER)?.liveness
      if (l === 'suspect') suspectSteps++
      if (l === 'dead') dead = true
    }
    return { suspectFraction: suspectSteps / steps, dead }
  }

  interface Setup { view: ClusterView, clock: { now: number } }
  function setup (): Setup {
    const clock = { now: 0 }
    const view = new ClusterView({ selfId: SELF, timing: TIMING, clock: () => clock.now, random: () => 0 })
    view.apply(advert(SELF, 1))
    view.apply(advert(PEER, 1))
    return { view, clock }
  }

  it('keeps a live host alive nearly all the time, never dead', () => {
    const r = flood(setup())
    console.log(`one reporter flooding every 100 ms for 120 s: the live host was suspect ${(r.suspectFraction * 100).toFixed(2)} % of the time`)
    expect(r.dead).toBe(false)
    expect(r.suspectFraction).toBeLessThan(0.02)
  })

  it('still suspects on an independent reporter, and on its own missed heartbeats', () => {
    const s = setup()
    const { view } = s
    flood(s)
    expect(view.suspect(notice(FLOOD, view))).toBe('ignored')
    expect(view.suspect(notice(OTHER, view))).toBe('suspected')
    expect(view.suspect(notice(FLOOD, view))).toBe('confirmed')

    // Missed heartbeats: suspect by this host's own judgement, whatever the flooder's credit.
    const quiet = setup()
    flood(quiet)
    quiet.clock.now += 2 * HB + 1
    quiet.view.tick()
    expect(quiet.view.get(PEER)?.liveness).toBe('suspect')
  })
})
