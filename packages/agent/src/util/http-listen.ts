import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** Listens on HOST:PORT (0: a free port); rejects with the listen error (EADDRINUSE …). */
export async function listenOn (server: Server, host: string, port: number): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
  return server.address() as AddressInfo
}

/** Closes a server and every connection it holds (keep-alive clients do not delay a stop). */
export async function closeServer (server: Server | undefined): Promise<void> {
  if (server === undefined) return
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => { resolve() }))
}

/** `http(s)://HOST:PORT` of a listening address. */
export function urlOf (scheme: 'http' | 'https', a: AddressInfo): string {
  return `${scheme}://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`
}
