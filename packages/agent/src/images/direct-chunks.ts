import { randomBytes } from 'node:crypto'
import { connect, createServer, type Server, type TLSSocket } from 'node:tls'
import type { Socket } from 'node:net'
import { ControlError } from '../control/errors.js'

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

interface Session { key: Buffer, lastUsed: number, peer: string }

/** The holder's side: a TLS-PSK listener on its underlay address, answering frames with `answer`. */
export class DirectChunkServer {
  private server: Server | undefined
  private port = 0
  private readonly sessions = new Map<string, Session>()
  private readonly sockets = new Set<Socket>()

  constructor (private readonly host: string, private readonly answer: (request: Uint8Array) => Promise<Uint8Array>) {}

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

  private serve (socket: TLSSocket): void {
    this.sockets.add(socket)
    socket.on('close', () => { this.sockets.delete(socket) })
    socket.on('error', () => {})
    const frames = new FrameReader(socket)
    void (async () => {
      for (;;) {
        const request = await frames.next()
        if (request === undefined) break
        const response = await this.answer(request)
        socket.write(frame(response))
      }
    })().catch(() => { socket.destroy() })
  }
}

/** The fetcher's side: a connection to one holder's direct session, one request at a time. */
export class DirectChunkClient {
  private readonly frames: FrameReader
  private queue: Promise<unknown> = Promise.resolve()
  closed = false
  /** Requests queued or in flight on this connection. */
  pending = 0

  private constructor (private readonly socket: TLSSocket) {
    this.frames = new FrameReader(socket)
    socket.on('close', () => { this.closed = true })
    socket.on('error', () => { this.closed = true })
  }

  static async connect (session: { address: string, identity: string, key: Uint8Array }, timeoutMs = 5_000): Promise<DirectChunkClient> {
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
    return new DirectChunkClient(socket)
  }

  /** One request, one answer (requests on a connection are answered in order). */
  async request (bytes: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    this.pending++
    const run = this.queue.then(async () => {
      if (this.closed) throw new Error('the direct connection is closed')
      this.socket.write(frame(bytes))
      let timer: NodeJS.Timeout | undefined
      try {
        const answer = await Promise.race([
          this.frames.next(),
          new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`no answer within ${timeoutMs} ms`)) }, timeoutMs) })
        ])
        if (answer === undefined) throw new Error('the holder closed the direct connection')
        return answer
      } catch (err) {
        this.close()
        throw err
      } finally {
        clearTimeout(timer)
      }
    })
    this.queue = run.catch(() => {})
    try {
      return await run
    } finally {
      this.pending--
    }
  }

  close (): void {
    this.closed = true
    this.socket.destroy()
  }
}

function frame (bytes: Uint8Array): Buffer {
  const head = Buffer.alloc(4)
  head.writeUInt32BE(bytes.length)
  return Buffer.concat([head, bytes])
}

/** Reads length-prefixed frames from a socket, in order; undefined at its end. */
class FrameReader {
  private buffered: Buffer[] = []
  private size = 0
  private ended = false
  private wake: (() => void) | undefined

  constructor (socket: Socket) {
    socket.on('data', (d: Buffer) => { this.buffered.push(d); this.size += d.length; this.wake?.() })
    socket.on('end', () => { this.ended = true; this.wake?.() })
    socket.on('close', () => { this.ended = true; this.wake?.() })
  }

  async next (): Promise<Uint8Array | undefined> {
    for (;;) {
      if (this.size >= 4) {
        // The header may span pieces; the body is joined once, when it is all here (not at every piece).
        if ((this.buffered[0] as Buffer).length < 4) this.buffered = [Buffer.concat(this.buffered)]
        const length = (this.buffered[0] as Buffer).readUInt32BE(0)
        if (length > MAX_FRAME) throw new Error(`a frame of ${length} bytes is larger than ${MAX_FRAME}`)
        if (this.size >= 4 + length) {
          const all = this.buffered.length === 1 ? this.buffered[0] as Buffer : Buffer.concat(this.buffered)
          const out = all.subarray(4, 4 + length)
          const rest = all.subarray(4 + length)
          this.buffered = rest.length > 0 ? [rest] : []
          this.size = rest.length
          return out
        }
      }
      if (this.ended) return undefined
      await new Promise<void>((resolve) => { this.wake = resolve })
      this.wake = undefined
    }
  }
}
