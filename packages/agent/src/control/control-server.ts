import { chmod, rm } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { FrameDecoder, encodeFrame, pb, type meshvirt } from '@meshvirt/proto'
import type { Logger } from '../log/logger.js'
import { ControlError, toControlError } from './errors.js'

export type ControlHandler = (req: meshvirt.v1.ControlRequest) => Promise<meshvirt.v1.IControlResponse>
/**
 * Takes over a connection whose request turns it into a byte stream (AttachConsole): it answers on
 * the socket itself and owns the socket from then on.
 */
export type ControlUpgrade = (req: meshvirt.v1.ControlRequest, socket: Socket) => Promise<void>

/** Control requests are small; a larger frame is a confused or hostile client. */
const MAX_REQUEST_BYTES = 1024 * 1024

/**
 * The agent's local control API: length-prefixed ControlRequest/ControlResponse frames on a
 * unix socket inside the (owner-only) data dir, itself chmod 0600 — file permissions are the
 * authentication, as with Docker's and libvirt's sockets.
 */
export class ControlServer {
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()

  constructor (private readonly path: string, private readonly handler: ControlHandler, private readonly log: Logger, private readonly upgrades: Partial<Record<'attachConsole', ControlUpgrade>> = {}) {}

  async start (): Promise<void> {
    if (Buffer.byteLength(this.path) > 100) throw new ControlError('INVALID_ARGUMENT', `control socket path ${this.path} is too long for a unix socket (max ~100 bytes): use a shorter --data-dir`)
    await rm(this.path, { force: true })
    const server = createServer((socket) => { this.serve(socket) })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.path, () => { server.off('error', reject); resolve() })
    })
    await chmod(this.path, 0o600)
    this.server = server
  }

  async stop (): Promise<void> {
    for (const s of this.sockets) s.destroy()
    const server = this.server
    this.server = undefined
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => { resolve() }))
    await rm(this.path, { force: true })
  }

  private serve (socket: Socket): void {
    this.sockets.add(socket)
    const decoder = new FrameDecoder(MAX_REQUEST_BYTES)
    let queue = Promise.resolve()
    socket.on('close', () => this.sockets.delete(socket))
    socket.on('error', (err) => { this.log.debug('control socket error', { err: err.message }) })
    const onData = (chunk: Buffer): void => {
      let frames: Uint8Array[]
      try {
        frames = decoder.push(chunk)
      } catch (err) {
        this.log.warn('control client sent a bad frame', { err: (err as Error).message })
        socket.destroy()
        return
      }
      // Answer in order, one request at a time per connection.
      for (const [i, frame] of frames.entries()) {
        const upgrade = this.upgradeOf(frame)
        if (upgrade !== undefined) {
          // From its answer on the connection carries raw bytes: nothing may follow the request unanswered.
          socket.off('data', onData)
          socket.pause()
          if (i < frames.length - 1 || decoder.pending > 0) {
            this.log.warn('control client sent bytes after a streaming request before its answer')
            socket.destroy()
            return
          }
          queue = queue.then(async () => { await upgrade.run(upgrade.req, socket) })
          return
        }
        queue = queue.then(async () => { await this.answer(socket, frame) })
      }
    }
    socket.on('data', onData)
  }

  private upgradeOf (frame: Uint8Array): { req: meshvirt.v1.ControlRequest, run: ControlUpgrade } | undefined {
    let req: meshvirt.v1.ControlRequest
    try {
      req = pb.ControlRequest.decode(frame)
    } catch {
      return undefined // answered as a bad request
    }
    const run = req.body === 'attachConsole' ? this.upgrades.attachConsole : undefined
    return run === undefined ? undefined : { req, run }
  }

  private async answer (socket: Socket, frame: Uint8Array): Promise<void> {
    let requestId = ''
    let response: meshvirt.v1.IControlResponse
    try {
      const req = pb.ControlRequest.decode(frame)
      requestId = req.requestId
      response = await this.handler(req)
    } catch (err) {
      const e = toControlError(err)
      if (e.code === 'INTERNAL') this.log.error('control request failed', { err: (err as Error).stack ?? String(err) })
      response = { error: e.toWire() }
    }
    if (socket.destroyed) return
    socket.write(encodeFrame(pb.ControlResponse.encode({ ...response, requestId }).finish()))
  }
}
