import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Socket } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'
import { roleAllows } from '../access/roles.js'
import type { UserClaims } from '../access/user-token.js'
import { ControlError } from '../control/errors.js'
import type { Logger } from '../log/logger.js'
import type { FailureLimiter } from './failure-limiter.js'
import { httpStatus } from './http-status.js'

/** A WebSocket message is a few keystrokes or a burst of guest output. */
const MAX_MESSAGE_BYTES = 64 * 1024
/** The subprotocol the page asks for; the token travels as the second one (browsers cannot set headers). */
export const CONSOLE_SUBPROTOCOL = 'meshvirt-console'
const PATH = /^\/v1\/vms\/([^/]+)\/console\/attach$/

export interface ConsoleSocketInit {
  authenticate: (token: string) => UserClaims
  /** The VM's serial console, wherever it runs (the control socket's attachConsole). */
  attach: (vm: { name: string } | { id: string }) => Promise<{ socket: Socket }>
  audit: (entry: { user: string, role: string, body: string, target: string, outcome: string }) => void
  /** The API's limiter of bad tokens per address: a WebSocket is no way around it. */
  failures: FailureLimiter
  log: Logger
}

/**
 * `vm console` in a browser: a WebSocket at /v1/vms/NAME/console/attach carries keystrokes in and the
 * guest's output out, joined to the VM's serial port through the control socket (so a VM on another
 * host is relayed over the mesh as for the CLI). Operators only; the token is the second subprotocol.
 */
export class ConsoleSockets {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, handleProtocols: (p) => (p.has(CONSOLE_SUBPROTOCOL) ? CONSOLE_SUBPROTOCOL : false) })

  constructor (private readonly init: ConsoleSocketInit) {}

  /**
   * Takes over an upgrade request: checks the token and role, attaches to the console, and only then
   * accepts the WebSocket — so a refusal (no such VM, not running, busy) is an HTTP answer with its reason.
   */
  upgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    void this.accept(req, socket, head).catch((err: unknown) => {
      this.init.log.warn('console websocket failed', { err: (err as Error).message })
      socket.destroy()
    })
  }

  close (): void {
    for (const ws of this.wss.clients) ws.terminate()
    this.wss.close()
  }

  private async accept (req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const refuse = (err: ControlError): void => {
      const body = JSON.stringify({ error: err.toWire() })
      socket.end(`HTTP/1.1 ${httpStatus(err.code)} ${err.code}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
    }
    const name = PATH.exec(new URL(req.url ?? '/', 'https://localhost').pathname)?.[1]
    if (name === undefined) return refuse(new ControlError('NOT_FOUND', 'no such route: a console is /v1/vms/NAME/console/attach'))
    const client = req.socket.remoteAddress ?? ''
    if (!this.init.failures.allows(client)) return refuse(new ControlError('RATE_LIMITED', 'too many requests with bad tokens from this address: wait a few seconds'))
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim())
    let user: UserClaims
    try {
      user = this.init.authenticate(offered.find((p) => p.startsWith('mvt1.')) ?? '')
    } catch (err) {
      this.init.failures.failed(client)
      return refuse(new ControlError('UNAUTHENTICATED', (err as Error).message))
    }
    if (!roleAllows(user.role, 'operator')) return refuse(new ControlError('PERMISSION_DENIED', `attachConsole needs the operator role; ${user.user} is ${user.role}`))
    const vm = decodeURIComponent(name)
    const audit = (outcome: string): void => { this.init.audit({ user: user.user, role: user.role, body: 'attachConsole', target: vm, outcome }) }
    let serial: Socket
    try {
      serial = (await this.init.attach(/^vm-[0-9a-f]{16}$/.test(vm) ? { id: vm } : { name: vm })).socket
    } catch (err) {
      const e = err instanceof ControlError ? err : new ControlError('INTERNAL', (err as Error).message)
      audit(`failed: ${e.code}`)
      return refuse(e)
    }
    audit('ok')
    this.wss.handleUpgrade(req, socket, head, (ws) => { this.join(ws, serial, vm) })
  }

  private join (ws: WebSocket, serial: Socket, vm: string): void {
    serial.on('data', (d: Buffer) => { ws.send(d) })
    serial.on('error', () => { ws.close() })
    serial.on('close', () => { ws.close(1000, 'console closed') })
    serial.resume()
    ws.on('message', (d: Buffer) => { serial.write(d) })
    ws.on('close', () => { serial.destroy() })
    ws.on('error', (err) => { this.init.log.debug('console websocket error', { vm, err: err.message }); serial.destroy() })
  }
}
