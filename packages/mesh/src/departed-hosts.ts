/**
 * Hosts this host declared dead, remembered with their addresses so that the connector can try
 * them again now and then (Serf's reconnect of failed members). A partition looks the same as a
 * crash from either side: each half declares the other dead, hangs up and fills its connections
 * from its own half. Without these retries the halves would never dial each other again, unless a
 * host ran short of connections and went back to its bootstrap addresses.
 *
 * A host leaves this memory when it is heard again (any newer advert), when its last advert said
 * it was leaving the cluster on purpose, or after `timeoutMs` (it is gone for good).
 */
import type { ClusterViewEvent } from './cluster-view.js'

export interface DepartedHost {
  readonly hostId: string
  readonly addrs: readonly string[]
  /** When this host declared it dead. */
  readonly sinceMs: number
}

export class DepartedHosts {
  private readonly hosts = new Map<string, DepartedHost>()

  constructor (
    private readonly timeoutMs: number,
    private readonly clock: () => number = Date.now,
    private readonly random: () => number = Math.random
  ) {}

  /** Follows the cluster view: remembers the dead, forgets whoever is heard again. */
  onViewEvent (e: ClusterViewEvent): void {
    if (e.host.self) return
    switch (e.type) {
      case 'dead':
        if (e.host.advert.state === 'leaving' || e.host.advert.addrs.length === 0) return
        this.hosts.set(e.host.hostId, { hostId: e.host.hostId, addrs: [...e.host.advert.addrs], sinceMs: this.clock() })
        return
      case 'joined':
      case 'updated':
      case 'alive':
        this.hosts.delete(e.host.hostId)
    }
  }

  has (hostId: string): boolean {
    return this.hosts.has(hostId)
  }

  get size (): number {
    return this.hosts.size
  }

  /** One remembered host, drawn at random among those not connected; forgets the expired first. */
  pick (connected: ReadonlySet<string>): DepartedHost | undefined {
    const now = this.clock()
    const candidates: DepartedHost[] = []
    for (const h of this.hosts.values()) {
      if (now - h.sinceMs > this.timeoutMs) this.hosts.delete(h.hostId)
      else if (!connected.has(h.hostId)) candidates.push(h)
    }
    return candidates[Math.floor(this.random() * candidates.length)]
  }
}
