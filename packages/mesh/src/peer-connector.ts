/**
 * Keeps each host connected to `targetPeers` random hosts of its view, and dials the bootstrap
 * addresses while the view cannot fill that quota. Without it every host would hang off the
 * bootstrap host alone (a star: see gossip-options.ts), and a host whose bootstrap peer died
 * before it joined would never retry.
 *
 * It also dials, every reconnectIntervalMs, one host it declared dead and still remembers
 * (departed-hosts.ts): the way two halves of a healed partition find each other again (mesh-node.ts
 * then has both ends announce themselves and pull the other's view).
 */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from '@libp2p/interface'
import type { ClusterView } from './cluster-view.js'
import { connectedHostIds } from './connected-hosts.js'
import { DepartedHosts } from './departed-hosts.js'
import type { MeshTiming } from './timing.js'

/** One dial attempt (libp2p's default): a host busy with a crowd of joiners answers late. */
const DIAL_TIMEOUT_MS = 10_000

export interface PeerConnectorInit {
  libp2p: Libp2p
  view: ClusterView
  bootstrap: Multiaddr[]
  timing: Pick<MeshTiming, 'connectIntervalMs' | 'targetPeers' | 'bootstrapDelayMs' | 'reconnectIntervalMs' | 'reconnectTimeoutMs'>
  log: (fmt: string, ...args: unknown[]) => void
}

export class PeerConnector {
  private timer: NodeJS.Timeout | undefined
  private first: NodeJS.Timeout | undefined
  private reconnectTimer: NodeJS.Timeout | undefined
  private busy = false
  private reconnecting = false
  private unsubscribe: (() => void) | undefined
  readonly departed: DepartedHosts
  /** Reconnect dials tried, and those a departed host answered. */
  readonly counters = { tried: 0, answered: 0 }

  constructor (private readonly init: PeerConnectorInit) {
    this.departed = new DepartedHosts(init.timing.reconnectTimeoutMs)
  }

  start (): void {
    const { view, timing } = this.init
    this.unsubscribe = view.subscribe((e) => { this.departed.onViewEvent(e) })
    this.first = setTimeout(() => { void this.run() }, timing.bootstrapDelayMs)
    this.timer = setInterval(() => { void this.run() }, timing.connectIntervalMs)
    if (timing.reconnectIntervalMs > 0) this.reconnectTimer = setInterval(() => { void this.reconnect() }, timing.reconnectIntervalMs)
  }

  stop (): void {
    clearTimeout(this.first)
    clearInterval(this.timer)
    clearInterval(this.reconnectTimer)
    this.unsubscribe?.()
  }

  /** Dials one departed host, if any is remembered and not connected; attempts never overlap. */
  async reconnect (): Promise<void> {
    if (this.reconnecting) return
    const host = this.departed.pick(connectedHostIds(this.init.libp2p))
    if (host === undefined) return
    this.reconnecting = true
    this.counters.tried++
    try {
      await this.init.libp2p.dial(host.addrs.map((a) => withPeerId(a, host.hostId)), { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
      this.counters.answered++
      this.init.log('reconnected to %s, declared dead %d s ago', host.hostId, Math.round((Date.now() - host.sinceMs) / 1000))
    } catch (err) {
      this.init.log('reconnect to departed %s failed: %e', host.hostId, err)
    } finally {
      this.reconnecting = false
    }
  }

  /** One round of top-up dials; rounds never overlap. */
  async run (): Promise<void> {
    if (this.busy) return
    this.busy = true
    try {
      const { libp2p, view, bootstrap, timing } = this.init
      const connected = connectedHostIds(libp2p)
      if (connected.size >= timing.targetPeers) return
      const candidates = view.hosts()
        .filter((h) => !h.self && h.liveness === 'alive' && !connected.has(h.hostId) && h.advert.addrs.length > 0)
      shuffle(candidates)
      const wanted = timing.targetPeers - connected.size
      const targets: Multiaddr[][] = candidates.slice(0, wanted)
        .map((h) => h.advert.addrs.map((a) => withPeerId(a, h.hostId)))
      // The view cannot fill the quota (we are new, alone, or connected to a peer whose gossip
      // never reached us): go back through the doors we were given.
      if (targets.length < wanted) targets.push(...bootstrap.filter((b) => !isConnected(b, connected)).map((b) => [b]))
      await Promise.allSettled(targets.map(async (addrs) => {
        try {
          await libp2p.dial(addrs, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
        } catch (err) {
          this.init.log('dial %s failed: %e', addrs[0]?.toString(), err)
        }
      }))
    } finally {
      this.busy = false
    }
  }
}

function isConnected (addr: Multiaddr, connected: Set<string>): boolean {
  const id = addr.getComponents().findLast((c) => c.name === 'p2p')?.value
  return id !== undefined && connected.has(id)
}

function withPeerId (addr: string, hostId: string): Multiaddr {
  return multiaddr(addr.includes('/p2p/') ? addr : `${addr}/p2p/${hostId}`)
}

function shuffle<T> (xs: T[]): void {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    const t = xs[i] as T
    xs[i] = xs[j] as T
    xs[j] = t
  }
}
