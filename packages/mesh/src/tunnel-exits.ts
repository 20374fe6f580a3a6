/**
 * The destination side of migration tunnels: owns the `/meshvirt/migrate/1.0.0` handler and, per
 * exposed (session, channel), connects each incoming stream from the one allowed host to a local
 * unix socket (the incoming QEMU's migration socket or its NBD server).
 */
import { createConnection, type Socket } from 'node:net'
import { byteStream } from '@libp2p/utils'
import type { Libp2p, Stream } from '@libp2p/interface'
import { bridgeSocketStream } from './socket-stream-bridge.js'
import { MIGRATE_PROTOCOL, decodePreambleHead, decodeSession, encodeAnswer, type TunnelAnswer, type TunnelChannel, type TunnelCounters } from './tunnel-preamble.js'

/** The preamble must arrive within this after the stream opens. */
export const TUNNEL_PREAMBLE_TIMEOUT_MS = 5_000
/** Concurrent tunnel streams per connection (a few disks and one RAM stream per migration). */
export const MAX_TUNNEL_STREAMS = 64

export interface TunnelExitInit {
  session: string
  channel: TunnelChannel
  /** The local socket to connect each stream to. */
  socketPath: string
  /** Host id of the only host allowed to open it (the migration's source). */
  peer: string
}

export interface TunnelExit {
  readonly counters: Readonly<TunnelCounters>
  readonly error: Error | undefined
  /** Resolves once every stream carried so far has closed. */
  idle: () => Promise<void>
  /** Refuse new streams and cut the open ones. */
  close: () => Promise<void>
}

interface Exposed {
  init: TunnelExitInit
  counters: TunnelCounters
  error?: Error
  sockets: Set<Socket>
  open: Set<Promise<void>>
}

export interface TunnelExitsInit {
  log?: (fmt: string, ...args: unknown[]) => void
}

export class TunnelExits {
  private readonly exposed = new Map<string, Exposed>()
  private readonly log: (fmt: string, ...args: unknown[]) => void

  constructor (private readonly libp2p: Libp2p, init: TunnelExitsInit = {}) {
    this.log = init.log ?? libp2p.logger.forComponent('meshvirt:mesh:tunnel')
  }

  async start (): Promise<void> {
    await this.libp2p.handle(MIGRATE_PROTOCOL, async (stream, connection) => {
      await this.accept(stream, connection.remotePeer.toString())
    }, { maxInboundStreams: MAX_TUNNEL_STREAMS })
  }

  async stop (): Promise<void> {
    await this.libp2p.unhandle(MIGRATE_PROTOCOL)
    await Promise.all([...this.exposed.values()].map(async (e) => { await this.unexpose(e) }))
  }

  expose (init: TunnelExitInit): TunnelExit {
    const key = keyOf(init.session, init.channel)
    if (this.exposed.has(key)) throw new TypeError(`the ${init.channel} tunnel of migration ${init.session} is already exposed`)
    const entry: Exposed = { init, counters: { sentBytes: 0, receivedBytes: 0, connections: 0 }, sockets: new Set(), open: new Set() }
    this.exposed.set(key, entry)
    return {
      counters: entry.counters,
      get error () { return entry.error },
      idle: async () => { await Promise.all([...entry.open]) },
      close: async () => { await this.unexpose(entry) }
    }
  }

  private async unexpose (entry: Exposed): Promise<void> {
    const key = keyOf(entry.init.session, entry.init.channel)
    if (this.exposed.get(key) === entry) this.exposed.delete(key)
    for (const s of entry.sockets) s.destroy()
    await Promise.all([...entry.open])
  }

  private async accept (stream: Stream, peer: string): Promise<void> {
    const signal = AbortSignal.timeout(TUNNEL_PREAMBLE_TIMEOUT_MS)
    const bytes = byteStream(stream)
    let entry: Exposed | undefined
    let socket: Socket | undefined
    try {
      const head = decodePreambleHead((await bytes.read({ bytes: 3, signal })).subarray())
      const session = decodeSession((await bytes.read({ bytes: head.nameBytes, signal })).subarray())
      entry = this.exposed.get(keyOf(session, head.channel))
      const refusal: TunnelAnswer | undefined = entry === undefined ? 'unknown-session' : entry.init.peer !== peer ? 'wrong-peer' : undefined
      if (refusal !== undefined || entry === undefined) {
        this.log('refused %s tunnel of %s from %s: %s', head.channel, session, peer, refusal)
        await bytes.write(encodeAnswer(refusal ?? 'unknown-session'), { signal })
        await stream.close({ signal })
        return
      }
      socket = await connectUnix(entry.init.socketPath).catch(() => undefined)
      if (socket === undefined) {
        await bytes.write(encodeAnswer('unreachable'), { signal })
        await stream.close({ signal })
        return
      }
      // Paused until bridged: QEMU's NBD server greets at once, and the answer must go first.
      socket.pause()
      await bytes.write(encodeAnswer('ok'), { signal })
    } catch (err) {
      socket?.destroy()
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      this.log('tunnel stream from %s failed before it opened: %e', peer, err)
      return
    }
    const target = entry
    const conn = socket
    target.counters.connections++
    target.sockets.add(conn)
    this.log('%s tunnel of %s from %s open on stream %s', target.init.channel, target.init.session, peer, stream.id)
    const done = bridgeSocketStream(conn, bytes.unwrap(), target.counters, this.log)
      .catch((err: unknown) => { target.error ??= err instanceof Error ? err : new Error(String(err)) })
      .finally(() => { target.sockets.delete(conn); target.open.delete(done) })
    target.open.add(done)
  }
}

function keyOf (session: string, channel: TunnelChannel): string {
  return `${session}/${channel}`
}

async function connectUnix (path: string): Promise<Socket> {
  return await new Promise((resolve, reject) => {
    const socket = createConnection({ path, allowHalfOpen: true })
    socket.once('connect', () => { socket.off('error', reject); resolve(socket) })
    socket.once('error', reject)
  })
}
