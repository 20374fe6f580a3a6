import { randomBytes } from 'node:crypto'
import { createServer, connect } from 'node:net'
import { MIGRATION_MULTIFD_CHANNELS } from '@meshvirt/hypervisor'
import { ControlError } from '../control/errors.js'

/**
 * The data path of a live migration (issue 20). The negotiation always crosses the mesh; the bytes
 * go either straight between the two QEMUs over TCP with QEMU's own TLS and a one-time pre-shared
 * key (`direct`), or through the libp2p tunnel (`mesh`: one port per host, works behind NAT, but
 * measured here at ~210 MB/s and +0.7 ms per round trip). `auto` takes direct when the source can
 * reach the destination's advertised address, the tunnel otherwise.
 */
export type MigrationVia = 'direct' | 'mesh' | 'auto'
export type MigrationPath = 'direct-tls' | 'mesh'

/** multifd channels of the direct path unless `--channels` says otherwise (the driver's measured default). */
export const DEFAULT_MULTIFD_CHANNELS = MIGRATION_MULTIFD_CHANNELS
/** How long the source waits for a TCP connection to the destination's address before it calls it unreachable. */
export const REACHABILITY_TIMEOUT_MS = 1_000

export function parseVia (via: string | null | undefined): MigrationVia {
  const v = via ?? ''
  if (v === '' || v === 'auto') return 'auto'
  if (v === 'direct' || v === 'mesh') return v
  throw new ControlError('INVALID_ARGUMENT', `--via ${v} is not direct, mesh or auto`)
}

/** A multiaddr's IP and TCP port (`/ip4/10.0.0.1/tcp/7946/…`), or undefined for other transports. */
export function ipAndPort (addr: string): { host: string, port: number } | undefined {
  const m = /^\/ip([46])\/([^/]+)\/tcp\/(\d+)/.exec(addr)
  if (m === null) return undefined
  return { host: m[2] as string, port: Number(m[3]) }
}

const UNSPECIFIED = new Set(['0.0.0.0', '::'])

/**
 * The address a destination's QEMU should listen on for this source: the first IP of the
 * destination's advertised libp2p addresses (the one the cluster already reaches it at), with the
 * libp2p port for a reachability check. Loopback only when the source advertises loopback too
 * (hosts on one machine, as in tests); a wildcard address is no address.
 */
export function directEndpoint (destinationAddrs: readonly string[], sourceAddrs: readonly string[]): { host: string, port: number } | undefined {
  const isLoopback = (h: string): boolean => h.startsWith('127.') || h === '::1'
  const sourceLocal = sourceAddrs.map(ipAndPort).some((a) => a !== undefined && isLoopback(a.host))
  const candidates = destinationAddrs.map(ipAndPort).filter((a): a is { host: string, port: number } => a !== undefined && !UNSPECIFIED.has(a.host))
  return candidates.find((a) => !isLoopback(a.host)) ?? (sourceLocal ? candidates.find((a) => isLoopback(a.host)) : undefined)
}

/** Whether `host` is one of this host's own listen IPs (where the destination may open a port). */
export function isOwnHost (host: string, ownAddrs: readonly string[]): boolean {
  return ownAddrs.map(ipAndPort).some((a) => a?.host === host)
}

/** A TCP connection to the destination's libp2p port at that address, within the bound: the path is open. */
export async function reachable (host: string, port: number, timeoutMs = REACHABILITY_TIMEOUT_MS): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = connect({ host, port })
    const done = (ok: boolean): void => { clearTimeout(timer); s.destroy(); resolve(ok) }
    const timer = setTimeout(() => { done(false) }, timeoutMs)
    s.once('connect', () => { done(true) })
    s.once('error', () => { done(false) })
  })
}

/** A port free on `host` right now, for QEMU to listen on (QEMU 7.2 cannot report the port of an NBD server it chose). */
export async function freePort (host: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number }
      server.close(() => { resolve(port) })
    })
  })
}

/** A fresh 256-bit key for one migration; it crosses only the mesh (cluster key + noise). */
export function newMigrationPsk (): Buffer {
  return randomBytes(32)
}

/** MB/s (10^6 B/s) of the RAM phase. */
export function throughputMBs (ramBytes: number, ramMs: number): number {
  return ramMs > 0 ? Math.round(ramBytes / ramMs / 1000 * 10) / 10 : 0
}
