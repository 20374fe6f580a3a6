import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface'

/**
 * Inbound connections one remote address may have in the handshake at once (before the cluster
 * key and noise have proven who it is). A real peer needs one or two; a flood from one address
 * cannot take more than this many of the host's pending slots.
 */
export const MAX_PENDING_PER_ADDRESS = 8
/**
 * The whole inbound handshake (cluster-key nonces, noise, yamux) must finish within this; a
 * connection that sends nothing gives its slot back this soon (libp2p's default is 10 s).
 * Measured here: a loopback handshake takes ~5–30 ms idle, under 1 s with TCG guests running.
 */
export const INBOUND_UPGRADE_TIMEOUT_MS = 3_000
/** At most one log line per this window about refused connections, with the count since the last. */
export const REFUSAL_LOG_WINDOW_MS = 10_000

export interface InboundGateStats {
  /** Inbound connections in the handshake now. */
  pending: number
  /** Refused because their address already had MAX_PENDING_PER_ADDRESS in the handshake. */
  refusedPerAddress: number
}

export interface RefusalReport { refused: number, addresses: string[], windowMs: number }

/**
 * The per-address count of handshakes in flight: a pure table (no libp2p), so its bound is
 * tested on its own. `admit` counts a connection in, `release` out.
 */
export class PendingByAddress {
  private readonly byAddress = new Map<string, number>()
  private total = 0

  constructor (private readonly perAddress = MAX_PENDING_PER_ADDRESS) {}

  admit (address: string): boolean {
    const n = this.byAddress.get(address) ?? 0
    if (n >= this.perAddress) return false
    this.byAddress.set(address, n + 1)
    this.total++
    return true
  }

  release (address: string): void {
    const n = this.byAddress.get(address) ?? 0
    if (n <= 0) return
    if (n === 1) this.byAddress.delete(address)
    else this.byAddress.set(address, n - 1)
    this.total--
  }

  pending (): number { return this.total }
  addresses (): number { return this.byAddress.size }
}

/**
 * The mesh's connection gater for inbound handshakes: refuses an address over its pending bound,
 * counts what it refused and reports it at a bounded rate. A connection leaves the count when its
 * upgrade completes or when it closes, whichever comes first.
 */
export class InboundGate {
  private readonly table: PendingByAddress
  private readonly counted = new WeakMap<MultiaddrConnection, string>()
  private refused = 0
  private unreported = 0
  private unreportedFrom = new Set<string>()
  private lastReport = 0

  constructor (private readonly opts: { perAddress?: number, report?: (r: RefusalReport) => void, now?: () => number } = {}) {
    this.table = new PendingByAddress(opts.perAddress)
  }

  gater (): Pick<ConnectionGater, 'denyInboundConnection' | 'denyInboundUpgradedConnection'> {
    return {
      denyInboundConnection: (maConn) => this.deny(maConn),
      denyInboundUpgradedConnection: (_peer: PeerId, maConn) => { this.done(maConn); return false }
    }
  }

  stats (): InboundGateStats {
    return { pending: this.table.pending(), refusedPerAddress: this.refused }
  }

  private deny (maConn: MultiaddrConnection): boolean {
    const address = addressOf(maConn)
    if (address === undefined) return false
    if (!this.table.admit(address)) {
      this.refused++
      this.noteRefusal(address)
      return true
    }
    this.counted.set(maConn, address)
    maConn.addEventListener('close', () => { this.done(maConn) }, { once: true })
    return false
  }

  private done (maConn: MultiaddrConnection): void {
    const address = this.counted.get(maConn)
    if (address === undefined) return
    this.counted.delete(maConn)
    this.table.release(address)
  }

  private noteRefusal (address: string): void {
    this.unreported++
    if (this.unreportedFrom.size < 8) this.unreportedFrom.add(address)
    const now = (this.opts.now ?? Date.now)()
    if (now - this.lastReport < REFUSAL_LOG_WINDOW_MS) return
    this.opts.report?.({ refused: this.unreported, addresses: [...this.unreportedFrom], windowMs: this.lastReport === 0 ? 0 : now - this.lastReport })
    this.lastReport = now
    this.unreported = 0
    this.unreportedFrom = new Set()
  }
}

/** The remote IP of a TCP connection (`/ip4/1.2.3.4/tcp/5` → `1.2.3.4`). */
function addressOf (maConn: MultiaddrConnection): string | undefined {
  const c = maConn.remoteAddr.getComponents().find((x) => x.name === 'ip4' || x.name === 'ip6')
  return c?.value
}
