/**
 * The I/O half of liveness: ticks the ClusterView and pings the suspects it names, directly
 * (libp2p ping, dialling if needed). A stopped host refuses the dial at once; a partitioned
 * one times out after `probeTimeoutMs`.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { Ping } from '@libp2p/ping'
import type { ClusterView } from './cluster-view.js'
import type { MeshTiming } from './timing.js'

export interface LivenessProberInit {
  view: ClusterView
  ping: Ping
  timing: Pick<MeshTiming, 'probeIntervalMs' | 'probeTimeoutMs' | 'heartbeatIntervalMs'>
  log: (fmt: string, ...args: unknown[]) => void
}

/** Ticks per probe interval: a suspect is declared dead at most this fraction late. */
const TICKS_PER_PROBE_INTERVAL = 2

export class LivenessProber {
  private timer: NodeJS.Timeout | undefined
  private stopped = false

  constructor (private readonly init: LivenessProberInit) {}

  start (): void {
    const { probeIntervalMs, heartbeatIntervalMs } = this.init.timing
    const tickMs = Math.max(10, Math.floor(Math.min(probeIntervalMs, heartbeatIntervalMs) / TICKS_PER_PROBE_INTERVAL))
    this.timer = setInterval(() => { this.tick() }, tickMs)
  }

  stop (): void {
    this.stopped = true
    clearInterval(this.timer)
  }

  private tick (): void {
    for (const hostId of this.init.view.tick()) void this.probe(hostId)
  }

  private async probe (hostId: string): Promise<void> {
    let reachable = false
    try {
      await this.init.ping.ping(peerIdFromString(hostId), { signal: AbortSignal.timeout(this.init.timing.probeTimeoutMs) })
      reachable = true
    } catch (err) {
      this.init.log('probe of suspect %s failed: %e', hostId, err)
    }
    if (!this.stopped) this.init.view.probeResult(hostId, reachable)
  }
}
