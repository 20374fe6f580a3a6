import { randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { meshvirt } from '@meshvirt/proto'
import { REQUIRED_ROLE, roleAllows, isMutating } from '../access/roles.js'
import type { UserClaims } from '../access/user-token.js'
import { ControlError } from '../control/errors.js'
import type { Handler } from '../control/control-handler.js'
import type { Logger } from '../log/logger.js'
import { matchRoute, type ApiRoute } from './api-routes.js'
import { asset } from './assets.js'
import { CONSOLE_HTML } from './console-page.js'
import { ConsoleSockets } from './console-socket.js'
import { httpStatus } from './http-status.js'
import { requestFromJson, responseToJson } from './json-wire.js'
import { FailureLimiter } from './failure-limiter.js'
import { closeServer, listenOn, urlOf } from '../util/http-listen.js'

/** Requests are small (a VM spec); a larger body is refused unread. */
export const MAX_BODY_BYTES = 1024 * 1024
/** Requests answered at once; more are refused (503) rather than queued without bound. */
export const MAX_IN_FLIGHT = 256
/** A request longer than this (a migration through the API) is answered by its own timeout first. */
const REQUEST_TIMEOUT_MS = 30 * 60_000

export interface ApiServerInit {
  host: string
  port: number
  tls: { key: string, cert: string }
  /** The control API every front end shares. */
  control: Handler
  /** The claims of a valid, unrevoked token; throws a TokenError saying why not. */
  authenticate: (token: string) => UserClaims
  /** A mutating request ended: the audit trail (an event naming the user). */
  audit: (entry: { user: string, role: string, body: string, target: string, outcome: string }) => void
  /** The OpenAPI document (made once). */
  openapi: () => Record<string, unknown>
  /** A VM's serial console wherever it runs (the control socket's attachConsole), for the browser's terminal. */
  attachConsole: (vm: { name: string } | { id: string }) => Promise<{ socket: Socket }>
  hostId: string
  log: Logger
}

/**
 * The agent's HTTPS API: JSON over the control requests (api-routes.ts), any agent answering any
 * request as the control socket does. Every route but /v1/health wants a user token; the role it
 * needs is the request body's (access/roles.ts). Bodies are bounded, requests in flight bounded,
 * and an address that keeps presenting bad tokens is slowed down (429).
 */
export class ApiServer {
  private server: Server | undefined
  private address: AddressInfo | undefined
  private inFlight = 0
  private readonly failures = new FailureLimiter()
  private readonly consoles: ConsoleSockets

  constructor (private readonly init: ApiServerInit) {
    this.consoles = new ConsoleSockets({ authenticate: init.authenticate, attach: init.attachConsole, audit: init.audit, failures: this.failures, log: init.log })
  }

  get url (): string {
    const a = this.address
    if (a === undefined) throw new Error('API server not started')
    return urlOf('https', a)
  }

  async start (): Promise<void> {
    const server = createServer({ key: this.init.tls.key, cert: this.init.tls.cert, requestTimeout: REQUEST_TIMEOUT_MS }, (req, res) => {
      this.serve(req, res).catch((err: unknown) => {
        this.init.log.warn('API request failed', { path: req.url, err: (err as Error).message })
        if (!res.headersSent) sendError(res, new ControlError('INTERNAL', 'internal error'))
        else res.end()
      })
    })
    server.on('upgrade', (req, socket, head: Buffer) => { this.consoles.upgrade(req, socket, head) })
    this.address = await listenOn(server, this.init.host, this.init.port)
    this.server = server
  }

  async stop (): Promise<void> {
    const server = this.server
    this.server = undefined
    this.consoles.close()
    await closeServer(server)
  }

  private async serve (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://localhost')
    const method = req.method ?? 'GET'
    if (method === 'GET' && url.pathname === '/v1/health') return sendJson(res, 200, { ok: true, hostId: this.init.hostId })
    // The console page holds no data: it asks for a token, then calls the routes below with it.
    if (method === 'GET' && url.pathname === '/') return sendPage(res)
    const file = method === 'GET' ? asset(url.pathname) : undefined
    if (file !== undefined) {
      res.writeHead(200, { 'content-type': file.type, 'cache-control': 'max-age=3600', 'x-content-type-options': 'nosniff' })
      res.end(file.body)
      return
    }
    const client = req.socket.remoteAddress ?? ''
    if (!this.failures.allows(client)) return sendError(res, new ControlError('RATE_LIMITED', 'too many requests with bad tokens from this address: wait a few seconds'))
    const user = this.authenticate(req, client)
    if (user instanceof ControlError) return sendError(res, user)
    if (this.inFlight >= MAX_IN_FLIGHT) return sendError(res, new ControlError('UNAVAILABLE', `the agent is answering ${MAX_IN_FLIGHT} API requests already: retry shortly`))
    this.inFlight++
    try {
      if (method === 'GET' && url.pathname === '/v1/openapi.json') return sendJson(res, 200, this.init.openapi())
      const json = await readJson(req)
      const request = this.toRequest(method, url, json, req.headers['idempotency-key'])
      await this.answer(res, user, request)
    } catch (err) {
      sendError(res, err instanceof ControlError ? err : new ControlError('INTERNAL', (err as Error).message))
    } finally {
      this.inFlight--
    }
  }

  private authenticate (req: IncomingMessage, client: string): UserClaims | ControlError {
    const auth = req.headers.authorization
    if (auth === undefined || !auth.startsWith('Bearer ')) {
      return new ControlError('UNAUTHENTICATED', 'a user token is required: send "Authorization: Bearer <token>" (meshvirt user add NAME --role viewer|operator|admin)')
    }
    try {
      return this.init.authenticate(auth.slice(7).trim())
    } catch (err) {
      this.failures.failed(client)
      return new ControlError('UNAUTHENTICATED', (err as Error).message)
    }
  }

  private toRequest (method: string, url: URL, json: Record<string, unknown>, idempotencyKey: string | string[] | undefined): meshvirt.v1.ControlRequest {
    if (method === 'POST' && url.pathname === '/v1/control') return requestFromJson(json)
    const found = matchRoute(method, url.pathname)
    if (found === undefined) throw new ControlError('NOT_FOUND', `no route ${method} ${url.pathname} (GET /v1/openapi.json lists them)`)
    if ('allowed' in found) throw new ControlError('METHOD_NOT_ALLOWED', `${url.pathname} takes ${found.allowed.join(', ')}, not ${method}`)
    const route: ApiRoute = found.route
    const key = typeof idempotencyKey === 'string' ? idempotencyKey : undefined
    return requestFromJson({ [route.body]: route.request({ params: found.params, query: url.searchParams, json }), ...(key !== undefined ? { idempotencyKey: key } : {}) })
  }

  private async answer (res: ServerResponse, user: UserClaims, request: meshvirt.v1.ControlRequest): Promise<void> {
    const body = request.body ?? ''
    const needed = REQUIRED_ROLE[body]
    if (needed === undefined) throw new ControlError('INVALID_ARGUMENT', `${body} is not offered by the API`)
    if (!roleAllows(user.role, needed)) throw new ControlError('PERMISSION_DENIED', `${body} needs the ${needed} role; ${user.user} is ${user.role}`)
    // A fresh request: never one a peer forwarded (hops), always this agent's id.
    request.hops = 0
    request.requestId = randomUUID()
    let outcome = 'ok'
    try {
      const response = await this.init.control(request)
      if (response.error != null) outcome = `failed: ${response.error.code ?? ''}`
      return response.error != null ? sendError(res, ControlError.fromWire(response.error)) : sendJson(res, 200, responseToJson(response))
    } catch (err) {
      outcome = `failed: ${err instanceof ControlError ? err.code : 'INTERNAL'}`
      throw err
    } finally {
      if (isMutating(body)) this.init.audit({ user: user.user, role: user.role, body, target: targetOf(request), outcome })
    }
  }
}

/** What a request acts on, for the audit line: a VM, network, group, image, host or user name. */
function targetOf (request: meshvirt.v1.ControlRequest): string {
  const b = (request as unknown as Record<string, Record<string, unknown> | undefined>)[request.body ?? '']
  if (b === undefined) return ''
  const vm = b.vm as { name?: string, id?: string } | undefined
  const spec = b.spec as { name?: string } | undefined
  return vm?.name || vm?.id || spec?.name || (b.name as string | undefined) || (b.host as string | undefined) || (b.ref as string | undefined) || ''
}

async function readJson (req: IncomingMessage): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > MAX_BODY_BYTES) throw new ControlError('TOO_LARGE', `request body over ${MAX_BODY_BYTES} bytes`)
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) throw new ControlError('TOO_LARGE', `request body over ${MAX_BODY_BYTES} bytes`)
    chunks.push(chunk as Buffer)
  }
  if (size === 0) return {}
  let json: unknown
  try {
    json = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch (err) {
    throw new ControlError('INVALID_ARGUMENT', `request body is not JSON: ${(err as Error).message}`)
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ControlError('INVALID_ARGUMENT', 'request body must be a JSON object')
  return json as Record<string, unknown>
}

function sendJson (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

function sendPage (res: ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
    'x-content-type-options': 'nosniff'
  })
  res.end(CONSOLE_HTML)
}

function sendError (res: ServerResponse, err: ControlError): void {
  const status = httpStatus(err.code)
  const headers: Record<string, string> = status === 401 ? { 'www-authenticate': 'Bearer' } : {}
  const text = JSON.stringify({ error: err.toWire() })
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers })
  res.end(text)
}
