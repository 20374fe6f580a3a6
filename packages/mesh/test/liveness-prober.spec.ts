import { afterEach, describe, expect, it } from 'vitest'
import type { ClusterView } from '../src/cluster-view.js'
import { LivenessProber } from '../src/liveness-prober.js'
import type { SuspicionNotice } from '../src/suspicion-notice.js'

const TIMING = { probeIntervalMs: 100, probeTimeoutMs: 50, heartbeatIntervalMs: 60_000, memberProbeIntervalMs: 0 }
/** Past the probe's time-out by more than the lag that makes a failure evidence: this host lagged. */
const LATE_MS = TIMING.probeTimeoutMs + 200

/** The part of a ClusterView the prober reads: one peer, alive until this host suspects it. */
function viewOf (peer: string): ClusterView {
  let liveness = 'alive'
  return {
    selfId: 'me',
    get: (id: string) => id === peer ? { liveness, self: false, lastHeardMs: 0, livenessSinceMs: 0, advert: { incarnation: 1, seq: 1 } } : undefined,
    suspect: () => { liveness = 'suspect' },
    tick: () => [],
    probeResult: () => {}
  } as unknown as ClusterView
}

describe('LivenessProber, a dropped connection', () => {
  let prober: LivenessProber | undefined
  afterEach(() => { prober?.stop() })

  function start (probe: () => Promise<void>, reports: SuspicionNotice[]): LivenessProber {
    prober = new LivenessProber({ view: viewOf('p1'), probe, timing: TIMING, connected: () => [], report: (n) => { reports.push(n) }, log: () => {} })
    return prober
  }

  it('probes again while its probes prove nothing (this host lagging), and reports once one fails cleanly', async () => {
    let calls = 0
    const reports: SuspicionNotice[] = []
    // Four probes come back late (inconclusive), then the peer refuses at once: it is gone.
    const p = start(async () => {
      calls++
      if (calls <= 4) await new Promise((resolve) => setTimeout(resolve, LATE_MS))
      throw new Error('connection refused')
    }, reports)
    p.onDisconnect('p1')
    const deadline = Date.now() + 5_000
    while (reports.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    expect(calls).toBe(5)
    expect(reports.map((r) => r.hostId)).toEqual(['p1'])
  })

  it('stops probing a host that answers', async () => {
    let calls = 0
    const reports: SuspicionNotice[] = []
    const p = start(async () => { calls++ }, reports)
    p.onDisconnect('p1')
    await new Promise((resolve) => setTimeout(resolve, 6 * TIMING.probeIntervalMs))
    // The probe at once and the one a probe interval later (a host shutting down may answer the first).
    expect(calls).toBe(2)
    expect(reports).toEqual([])
  })
})
