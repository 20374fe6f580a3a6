/**
 * The source side of a migration tunnel: a unix socket QEMU connects to (its `migrate unix:…` or
 * its NBD client), each connection carried on its own `/meshvirt/migrate/1.0.0` stream to the
 * destination host, which connects it to the matching socket of its QEMU (see TunnelExits).
 */
import { rm } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { byteStream } from '@libp2p/utils'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import { TunnelRefusedError } from './errors.js'
import { bridgeSocketStream } from './socket-stream-bridge.js'
import { MIGRATE_PROTOCOL, decodeAnswer, encodePreamble, type TunnelChannel, type TunnelCounters } from './tunnel-preamble.js'

/** Dial, preamble and answer must fit in this. */
export const TUNNEL_OPEN_TIMEOUT_MS = 10_000

export interface TunnelEntranceInit {
  /** The destination host. */
  peer: string | PeerId
  session: string
  channel: TunnelChannel
  /** Where to listen; QEMU on this host connects here. Removed first if left over. */
  socketPath: string
  openTimeoutMs?: number
  /** Called for each connection that could not be tunnelled or broke (QEMU then sees its socket close). */
  onError?: (err: Error) => void
}

export interface TunnelEntrance {
  readonly socketPath: string
  readonly counters: Readonly<TunnelCounters>
  /** The first failure of any of its connections, if one failed. */
  readonly error: Error | undefined
  /** Resolves once every connection accepted so far has closed (cleanly or not). */
  idle: () => Promise<void>
  /** Stop listening, cut every open connection, remove the socket file. */
  close: () => Promise<void>
}

export async function openTunnelEntrance (libp2p: Libp2p, init: TunnelEntranceInit): Promise<TunnelEntrance> {
  const peer = typeof init.peer === 'string' ? peerIdFromString(init.peer) : init.peer
  const timeoutMs = init.openTimeoutMs ?? TUNNEL_OPEN_TIMEOUT_MS
  const counters: TunnelCounters = { sentBytes: 0, receivedBytes: 0, connections: 0 }
  const log = libp2p.logger.forComponent('meshvirt:mesh:tunnel')
  const open = new Set<Promise<void>>()
  const sockets = new Set<Socket>()
  let error: Error | undefined
  let closing = false

  const failed = (err: Error): void => {
    error ??= err
    init.onError?.(err)
  }

  const carry = async (socket: Socket): Promise<void> => {
    socket.pause()
    let stream: Stream | undefined
    try {
      const signal = AbortSignal.timeout(timeoutMs)
      stream = await libp2p.dialProtocol(peer, MIGRATE_PROTOCOL, { signal })
      const bytes = byteStream(stream)
      await bytes.write(encodePreamble({ session: init.session, channel: init.channel }), { signal })
      const answer = decodeAnswer((await bytes.read({ bytes: 1, signal })).get(0))
      if (answer !== 'ok') throw new TunnelRefusedError(init.session, init.channel, peer.toString(), answer)
      if (closing) throw new Error('tunnel entrance closed')
      counters.connections++
      log('%s tunnel of %s to %s open on stream %s', init.channel, init.session, peer, stream.id)
      await bridgeSocketStream(socket, bytes.unwrap(), counters, log)
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err))
      stream?.abort(e)
      socket.destroy()
      log('%s tunnel of %s to %s failed: %s', init.channel, init.session, peer, e.message)
      if (!closing) failed(e)
    }
  }

  await rm(init.socketPath, { force: true })
  // allowHalfOpen: QEMU's end of one direction must travel as such, not close the other one.
  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
    sockets.add(socket)
    const done = carry(socket).finally(() => { sockets.delete(socket); open.delete(done) })
    open.add(done)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(init.socketPath, () => { server.off('error', reject); resolve() })
  })

  return {
    socketPath: init.socketPath,
    counters,
    get error () { return error },
    idle: async () => { await Promise.all([...open]) },
    close: async () => {
      closing = true
      const stopped = new Promise<void>((resolve) => { server.close(() => { resolve() }) })
      for (const s of sockets) s.destroy()
      await Promise.all([...open, stopped])
      await rm(init.socketPath, { force: true })
    }
  }
}
