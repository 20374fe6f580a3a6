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
 * every stream message is bigger than that, and each pause costs a window-update round trip. Once
 * pausing really held the sender (see resume below), 256 KiB paused so often that a 256 MiB guest's
 * RAM took ~740 ms to cross instead of ~570 ms with 1 MiB (25 migrations each, this 2-core box).
 */
export const TUNNEL_SOCKET_HIGH_WATER_BYTES = 1024 * 1024
/**
 * Bytes in flight per direction: the yamux receive window of a tunnel stream. yamux grows a window
 * to 16 MiB, and on a CPU-bound path that much waits between the two QEMUs: QEMU then believes its
 * last pages fit in the downtime limit while megabytes still queue ahead of them (measured here,
 * 128 MiB guest, 30 ms limit: 20 MB in flight at the switchover, 160 ms of downtime). 1 MiB still
 * fills a 1 ms-RTT link at 1 GB/s.
 */
export const TUNNEL_WINDOW_BYTES = 1024 * 1024

/** Resolves when both ends have closed cleanly; rejects when either was aborted or failed. */
export async function bridgeSocketStream (socket: Socket, stream: Stream, counters: TunnelCounters, log: (fmt: string, ...args: unknown[]) => void = () => {}): Promise<void> {
  stream.maxReadBufferLength = TUNNEL_READ_BUFFER_BYTES
  limitWindow(stream, TUNNEL_WINDOW_BYTES)
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
    // libp2p's resume() hands over what it buffered *before* it tells the muxer to grant window
    // again: pausing inside that hand-over would leave the stream paused and the window flowing,
    // and the sender unbounded (measured: 33 MB buffered, then the stream reset). So a pause is
    // decided only once resume() has returned.
    let resuming = false
    const pauseIfFull = (): void => {
      // Past the socket's own mark a write has returned false, so 'drain' will come.
      if (socket.writableLength > TUNNEL_SOCKET_HIGH_WATER_BYTES && stream.readStatus === 'readable') {
        stream.pause()
        socket.once('drain', resume)
      }
    }
    const resume = (): void => {
      if (stream.readStatus !== 'paused') return
      resuming = true
      try { stream.resume() } finally { resuming = false }
      pauseIfFull()
    }
    stream.addEventListener('message', (evt) => {
      if (socket.destroyed || socket.writableEnded) { fail(new Error('the local socket closed while the remote was still sending')); return }
      const chunks = evt.data instanceof Uint8Array ? [evt.data] : [...evt.data]
      for (const chunk of chunks) {
        counters.receivedBytes += chunk.byteLength
        socket.write(chunk)
      }
      if (!resuming) pauseIfFull()
    })
    // 'end': the remote closed its side and everything it sent has been handed to the socket.
    stream.addEventListener('end', () => {
      log('stream %s: remote finished sending after %d bytes', stream.id, counters.receivedBytes)
      if (failure === undefined && !socket.destroyed) socket.end()
    })
    stream.addEventListener('close', (evt) => {
      log('stream %s closed (%s); %d bytes sent, %d received', stream.id, evt.error?.message ?? 'cleanly', counters.sentBytes, counters.receivedBytes)
      streamClosed = true
      if (evt.error != null) fail(evt.error)
      else if (!socket.destroyed && !socket.writableEnded) socket.end()
      settle()
    })

    // socket → stream
    socket.on('data', (chunk: Buffer) => {
      counters.sentBytes += chunk.byteLength
      try {
        stream.send(chunk)
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)))
        return
      }
      // Not send()'s boolean: after a 'drain' it accepts a whole socket read while the yamux window
      // has room for a fraction, so the queue grows by a chunk per window update (measured: 28 MB
      // queued behind QEMU's last pages at the switchover). Read on only once it has emptied.
      if (stream.writeBufferLength === 0) return
      socket.pause()
      stream.addEventListener('idle', () => { if (!socket.destroyed) socket.resume() }, { once: true })
    })
    socket.on('end', () => {
      log('stream %s: local socket finished sending after %d bytes', stream.id, counters.sentBytes)
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

/**
 * yamux sizes windows per muxer, not per stream, and the other protocols keep its default; its
 * stream reads `maxStreamWindowSize` each time it grows the window, so lowering it here caps this
 * stream alone. A muxer without the field is left as it is.
 */
function limitWindow (stream: Stream, bytes: number): void {
  const s = stream as Stream & { maxStreamWindowSize?: number, recvWindow?: number }
  if (typeof s.maxStreamWindowSize !== 'number') return
  s.maxStreamWindowSize = Math.max(bytes, s.recvWindow ?? 0)
}
