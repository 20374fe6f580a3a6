import { randomBytes } from 'node:crypto'
import { connect, createServer, type Server, type TLSSocket } from 'node:tls'
import type { Socket } from 'node:net'
import { ControlError } from '../control/errors.js'
import type { BufferPool } from './buffer-pool.js'

/**
 * Chunks straight between two hosts. The mesh's streams are encrypted in JavaScript (~100 MB/s one
 * way here); a TLS 1.2 PSK connection is encrypted by OpenSSL with AES-GCM. The key is one-time,
 * handed out over the image protocol (itself inside the mesh), per fetching host and holder.
 */
const CIPHERS = 'PSK-AES128-GCM-SHA256'
/** A session nobody used for this long is forgotten (its key with it). */
export const DIRECT_IDLE_MS = 60_000
/** Frames: a 4-byte big-endian length, then the bytes; nothing larger than a chunk and its envelope. */
const MAX_FRAME = 8 * 1024 * 1024
/** Answers a holder prepares at once per connection, ahead of the one being sent. */
export const SERVE_AHEAD = 4
/** Chunk buffers a holder keeps for the answers it reads (a few connections' worth). */
export const SERVED_BUFFERS = 4 * (SERVE_AHEAD + 1)

interface Session { key: Buffer, lastUsed: number, peer: string }

/** The holder's side: a TLS-PSK listener on its underlay address, answering frames with `answer`. */
export class DirectChunkServer {
  private server: Server | undefined
  private port = 0
  private readonly sessions = new Map<string, Session>()
  private readonly sockets = new Set<Socket>()

  /** With `buffers`: the answers come from that pool, and go back to it once written to the socket. */
  constructor (private readonly host: string, private readonly answer: (request: Uint8Array) => Promise<Uint8Array>, private readonly buffers?: BufferPool) {}

  async start (): Promise<void> {
    const server = createServer({
      ciphers: CIPHERS,
      maxVersion: 'TLSv1.2',
      pskCallback: (_socket, identity) => {
        const s = this.sessions.get(identity)
        if (s === undefined) return null
        s.lastUsed = Date.now()
        return s.key
      }
    }, (socket) => { this.serve(socket) })
    server.on('tlsClientError', () => {})
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, this.host, () => { server.off('error', reject); resolve() })
    })
    this.port = (server.address() as { port: number }).port
    this.server = server
  }

  /** A one-time key for `peer` (a host id, for the logs), valid until idle for DIRECT_IDLE_MS. */
  open (peer: string): { address: string, identity: string, key: Buffer } {
    if (this.server === undefined) throw new ControlError('UNAVAILABLE', 'no direct chunk listener on this host')
    const now = Date.now()
    for (const [id, s] of this.sessions) if (now - s.lastUsed > DIRECT_IDLE_MS) this.sessions.delete(id)
    const identity = randomBytes(12).toString('hex')
    const key = randomBytes(32)
    this.sessions.set(identity, { key, lastUsed: now, peer })
    return { address: `${this.host}:${this.port}`, identity, key }
  }

  async stop (): Promise<void> {
    this.sessions.clear()
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => { if (this.server === undefined) resolve(); else this.server.close(() => { resolve() }) })
  }

  /**
   * Answers a connection's requests in order, preparing up to SERVE_AHEAD at once (a pipelining
   * client gets the next chunk read from disk while the last one is encrypted and sent), and reads no
   * further while the socket's buffer is full.
   */
  private serve (socket: TLSSocket): void {
    this.sockets.add(socket)
    socket.on('close', () => { this.sockets.delete(socket) })
    socket.on('error', () => {})
    const frames = new FrameReader(socket)
    const ahead: Array<Promise<Uint8Array>> = []
    let reading = true
    const send = async (): Promise<void> => {
      const response = await (ahead[0] as Promise<Uint8Array>)
      ahead.shift()
      if (!writeFrame(socket, response, () => { this.buffers?.put(response) })) await drained(socket)
    }
    void (async () => {
      while (reading || ahead.length > 0) {
        if (reading && ahead.length < SERVE_AHEAD) {
          const request = ahead.length === 0 ? await frames.next() : frames.ready()
          if (request === null) { await send(); continue }
          if (request === undefined) { reading = false; continue }
          const answer = this.answer(request)
          answer.catch(() => {})
          ahead.push(answer)
          continue
        }
        await send()
      }
    })().catch(() => { socket.destroy() })
  }
}

/**
 * The fetcher's side: a connection to one holder's direct session. Requests are pipelined: each is
 * written at once, and the holder answers them in order.
 */
export class DirectChunkClient {
  private readonly frames: FrameReader
  private readonly waiting: Array<{ resolve: (answer: Uint8Array) => void, reject: (err: Error) => void, timer: NodeJS.Timeout }> = []
  closed = false

  private constructor (private readonly socket: TLSSocket, pool?: BufferPool) {
    this.frames = new FrameReader(socket, pool)
    socket.on('close', () => { this.fail(new Error('the holder closed the direct connection')) })
    socket.on('error', (err) => { this.fail(err) })
    void this.read()
  }

  /** Requests sent and not answered yet. */
  get pending (): number {
    return this.waiting.length
  }

  /** With `pool`, answers that span socket reads are joined into its buffers (give them back with its `put`). */
  static async connect (session: { address: string, identity: string, key: Uint8Array }, timeoutMs = 5_000, pool?: BufferPool): Promise<DirectChunkClient> {
    const at = session.address.lastIndexOf(':')
    const socket = connect({
      host: session.address.slice(0, at),
      port: Number(session.address.slice(at + 1)),
      ciphers: CIPHERS,
      maxVersion: 'TLSv1.2',
      checkServerIdentity: () => undefined,
      pskCallback: () => ({ identity: session.identity, psk: Buffer.from(session.key) })
    })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no TLS session with ${session.address} within ${timeoutMs} ms`)) }, timeoutMs)
      socket.once('secureConnect', () => { clearTimeout(timer); resolve() })
      socket.once('error', (err) => { clearTimeout(timer); reject(err) })
    })
    return new DirectChunkClient(socket, pool)
  }

  /** One request, its answer (a connection that fails or times out fails every request on it). */
  async request (bytes: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.closed) throw new Error('the direct connection is closed')
    return await new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => { this.fail(new Error(`no answer within ${timeoutMs} ms`)) }, timeoutMs)
      this.waiting.push({ resolve, reject, timer })
      writeFrame(this.socket, bytes)
    })
  }

  close (): void {
    this.fail(new Error('the direct connection is closed'))
  }

  private async read (): Promise<void> {
    try {
      for (;;) {
        const answer = await this.frames.next()
        if (answer === undefined) break
        const w = this.waiting.shift()
        if (w === undefined) throw new Error('the holder sent an answer to nothing asked')
        clearTimeout(w.timer)
        w.resolve(answer)
      }
      this.fail(new Error('the holder closed the direct connection'))
    } catch (err) {
      this.fail(err as Error)
    }
  }

  private fail (err: Error): void {
    this.closed = true
    this.socket.destroy()
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer)
      w.reject(err)
    }
  }
}

/**
 * Writes a frame without joining its header and body into a new buffer; false: the socket's buffer
 * is full. `written` runs once the socket holds the body no more (sent, or the socket failed).
 */
function writeFrame (socket: Socket, bytes: Uint8Array, written?: () => void): boolean {
  const head = Buffer.allocUnsafe(4)
  head.writeUInt32BE(bytes.length)
  socket.cork()
  socket.write(head)
  const room = written === undefined ? socket.write(bytes) : socket.write(bytes, () => { written() })
  socket.uncork()
  return room
}

async function drained (socket: Socket): Promise<void> {
  if (socket.destroyed) throw new Error('the connection closed')
  await new Promise<void>((resolve, reject) => {
    const done = (): void => { socket.off('drain', done); socket.off('close', done); if (socket.destroyed) reject(new Error('the connection closed')); else resolve() }
    socket.on('drain', done)
    socket.on('close', done)
  })
}

/** Reads length-prefixed frames from a socket, in order; undefined at its end. */
export class FrameReader {
  private readonly pieces: Buffer[] = []
  private size = 0
  private ended = false
  private wake: (() => void) | undefined

  constructor (socket: Socket, private readonly pool?: BufferPool) {
    socket.on('data', (d: Buffer) => { this.pieces.push(d); this.size += d.length; this.wake?.() })
    socket.on('end', () => { this.ended = true; this.wake?.() })
    socket.on('close', () => { this.ended = true; this.wake?.() })
  }

  async next (): Promise<Uint8Array | undefined> {
    for (;;) {
      const frame = this.ready()
      if (frame !== null) return frame
      await new Promise<void>((resolve) => { this.wake = resolve })
      this.wake = undefined
    }
  }

  /** The next frame if it is all here; undefined at the socket's end; null: not yet. */
  ready (): Uint8Array | undefined | null {
    if (this.size >= 4) {
      if ((this.pieces[0] as Buffer).length < 4) {
        // The header spans pieces: joined, and put back.
        this.pieces.unshift(this.take(4))
        this.size += 4
      }
      const length = (this.pieces[0] as Buffer).readUInt32BE(0)
      if (length > MAX_FRAME) throw new Error(`a frame of ${length} bytes is larger than ${MAX_FRAME}`)
      if (this.size >= 4 + length) {
        this.take(4)
        return this.take(length)
      }
    }
    return this.ended ? undefined : null
  }

  /**
   * The next `n` buffered bytes: a view when one piece holds them, else copied once into a buffer of
   * their own (never the bytes of the frames behind them: a pipelined connection buffers several).
   */
  private take (n: number): Buffer {
    const first = this.pieces[0] as Buffer
    this.size -= n
    if (first.length >= n) {
      if (first.length === n) this.pieces.shift()
      else this.pieces[0] = first.subarray(n)
      return first.subarray(0, n)
    }
    const out = this.pool?.get(n) ?? Buffer.allocUnsafe(n)
    for (let at = 0; at < n;) {
      const piece = this.pieces[0] as Buffer
      const used = Math.min(piece.length, n - at)
      piece.copy(out, at, 0, used)
      at += used
      if (used === piece.length) this.pieces.shift()
      else this.pieces[0] = piece.subarray(used)
    }
    return out
  }
}
