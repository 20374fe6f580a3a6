/**
 * Keeps each host connected to `targetPeers` random hosts of its view, and dials the bootstrap
 * addresses while the view cannot fill that quota. Without it every host would hang off the
 * bootstrap host alone (a star: see gossip-options.ts), and a host whose bootstrap peer died
 * before it joined would never retry.
 */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from '@libp2p/interface'
import type { ClusterView } from './cluster-view.js'
import { connectedHostIds } from './connected-hosts.js'
import type { MeshTiming } from './timing.js'

/** One dial attempt (libp2p's default): a host busy with a crowd of joiners answers late. */
const DIAL_TIMEOUT_MS = 10_000

export interface PeerConnectorInit {
  libp2p: Libp2p
  view: ClusterView
  bootstrap: Multiaddr[]
  timing: Pick<MeshTiming, 'connectIntervalMs' | 'targetPeers' | 'bootstrapDelayMs'>
  log: (fmt: string, ...args: unknown[]) => void
}

export class PeerConnector {
  private timer: NodeJS.Timeout | undefined
  private first: NodeJS.Timeout | undefined
  private busy = false

  constructor (private readonly init: PeerConnectorInit) {}

  start (): void {
    this.first = setTimeout(() => { void this.run() }, this.init.timing.bootstrapDelayMs)
    this.timer = setInterval(() => { void this.run() }, this.init.timing.connectIntervalMs)
  }

  stop (): void {
    clearTimeout(this.first)
    clearInterval(this.timer)
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
