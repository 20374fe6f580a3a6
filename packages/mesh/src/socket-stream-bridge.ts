/**
 * Joins a local socket (QEMU's migration or NBD connection) to a libp2p stream, both directions,
 * with backpressure on each and half-close carried across.
 *
 * Event-driven rather than an it-pipe of the stream's async iterator: in libp2p 3 that iterator
 * buffers into an unbounded pushable, so a slow socket would let the whole guest pile up in memory.
 * Here a full socket pauses the stream (yamux then stops granting window to the sender) and a full
 * stream pauses the socket (the kernel then stops QEMU).
 */
import type { Socket } from 'node:net'
import type { Stream } from '@libp2p/interface'
import type { TunnelCounters } from './tunnel-preamble.js'

/**
 * yamux lets a stream's receive window grow to 16 MiB, and that much may still arrive after we
 * pause: libp2p resets a stream whose read buffer passes `maxReadBufferLength` (4 MiB by default).
 */
export const TUNNEL_READ_BUFFER_BYTES = 32 * 1024 * 1024
/**
 * Bytes queued on the local socket before the stream is paused. Not the socket's own 16 KiB mark:
 * every stream message is bigger than that, and pausing on each costs a window-update round trip.
 */
export const TUNNEL_SOCKET_HIGH_WATER_BYTES = 256 * 1024

/** Resolves when both ends have closed cleanly; rejects when either was aborted or failed. */
export async function bridgeSocketStream (socket: Socket, stream: Stream, counters: TunnelCounters): Promise<void> {
  stream.maxReadBufferLength = TUNNEL_READ_BUFFER_BYTES
  return await new Promise<void>((resolve, reject) => {
    let socketClosed = false
    let streamClosed = false
    let failure: Error | undefined
    const settle = (): void => {
      if (!socketClosed || !streamClosed) return
      if (failure !== undefined) reject(failure); else resolve()
    }
    const fail = (err: Error): void => {
      failure ??= err
      if (!socket.destroyed) socket.destroy()
      stream.abort(err)
    }

    // stream → socket
    const resume = (): void => { if (stream.readStatus === 'paused') stream.resume() }
    stream.addEventListener('message', (evt) => {
      if (socket.destroyed || socket.writableEnded) { fail(new Error('the local socket closed while the remote was still sending')); return }
      const chunks = evt.data instanceof Uint8Array ? [evt.data] : [...evt.data]
      for (const chunk of chunks) {
        counters.receivedBytes += chunk.byteLength
        socket.write(chunk)
      }
      // Past the socket's own mark a write has returned false, so 'drain' will come.
      if (socket.writableLength > TUNNEL_SOCKET_HIGH_WATER_BYTES && stream.readStatus === 'readable') {
        stream.pause()
        socket.once('drain', resume)
      }
    })
    // 'end': the remote closed its side and everything it sent has been handed to the socket.
    stream.addEventListener('end', () => { if (failure === undefined && !socket.destroyed) socket.end() })
    stream.addEventListener('close', (evt) => {
      streamClosed = true
      if (evt.error != null) fail(evt.error)
      else if (!socket.destroyed && !socket.writableEnded) socket.end()
      settle()
    })

    // socket → stream
    socket.on('data', (chunk: Buffer) => {
      counters.sentBytes += chunk.byteLength
      try {
        if (stream.send(chunk)) return
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)))
        return
      }
      socket.pause()
      stream.onDrain().then(() => { if (!socket.destroyed) socket.resume() }, (err: unknown) => { fail(err instanceof Error ? err : new Error(String(err))) })
    })
    socket.on('end', () => {
      stream.close().catch((err: unknown) => { fail(err instanceof Error ? err : new Error(String(err))) })
    })
    socket.on('error', (err) => { fail(err) })
    socket.on('close', () => {
      socketClosed = true
      // A socket gone for good with the stream still open: nothing more can cross in either way.
      if (stream.status === 'open') {
        if (stream.writeStatus === 'writable') stream.close().catch(() => {})
        if (stream.remoteWriteStatus !== 'closed') fail(new Error('the local socket closed before the remote finished sending'))
      }
      settle()
    })
    socket.resume()
  })
}

