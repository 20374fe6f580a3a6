import { InvalidMigrationParamsError } from '../errors.js'

/**
 * Where a migration stream or an NBD server is reached, as QEMU's `SocketAddress` knows it.
 * `unix`: a socket path — the destination's own socket, or a local entrance of a mesh tunnel (the
 * default path: encrypted, authenticated by the cluster key). `inet`: QEMU straight to QEMU over
 * TCP, neither encrypted nor authenticated — a comparison path for benchmarks, never the default.
 */
export type MigrationAddress =
  | { type: 'unix', path: string }
  | { type: 'inet', host: string, port: number }

const TCP = /^tcp:(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/

/**
 * `migrationSocket`/`nbdSocket` strings: a unix socket path, or `tcp:HOST:PORT` (`tcp:[::1]:PORT`
 * for IPv6), the spelling of QEMU's own migration URIs.
 */
export function parseMigrationAddress (address: string): MigrationAddress {
  if (address.startsWith('tcp:')) {
    const m = TCP.exec(address)
    const port = Number(m?.[3])
    if (m === null || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new InvalidMigrationParamsError(`migration address ${address} is not tcp:HOST:PORT with a port in 1..65535`)
    }
    return { type: 'inet', host: (m[1] ?? m[2]) as string, port }
  }
  if (address === '') throw new InvalidMigrationParamsError('empty migration socket path')
  return { type: 'unix', path: address }
}

/** The `tcp:HOST:PORT` spelling of a TCP endpoint (IPv6 hosts bracketed); refuses a bad port. */
export function tcpAddress (host: string, port: number): string {
  const address = `tcp:${host.includes(':') ? `[${host}]` : host}:${port}`
  parseMigrationAddress(address)
  return address
}

/** The URI of `migrate` / `migrate-incoming`. */
export function migrationUri (a: MigrationAddress): string {
  return a.type === 'unix' ? `unix:${a.path}` : `tcp:${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`
}

/** `nbd-server-start`'s `addr`, which still takes the legacy `SocketAddressLegacy` shape ({type, data}) in QEMU 7.2. */
export function nbdServerStartAddress (a: MigrationAddress): { type: 'unix', data: { path: string } } | { type: 'inet', data: { host: string, port: string } } {
  return a.type === 'unix' ? { type: 'unix', data: { path: a.path } } : { type: 'inet', data: { host: a.host, port: String(a.port) } }
}

/** The `server` of a `blockdev-add` NBD client node (a flat `SocketAddress`; QEMU wants the port as a string). */
export function nbdBlockdevServer (a: MigrationAddress): { type: 'unix', path: string } | { type: 'inet', host: string, port: string } {
  return a.type === 'unix' ? { type: 'unix', path: a.path } : { type: 'inet', host: a.host, port: String(a.port) }
}
