import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from '../log/logger.js'
import { closeServer, listenOn, urlOf } from '../util/http-listen.js'
import { tokenMatches } from './access-token.js'
import type { ClusterSnapshot } from './cluster-snapshot.js'
import { DASHBOARD_HTML } from './dashboard-page.js'
import type { EventReader } from './event-bus.js'
import type { EventRecord } from './event-ring.js'

const COOKIE = 'meshvirt_token'
/** Views change in bursts (a placement storm): the dashboard gets at most this many snapshots a second. */
const SNAPSHOT_THROTTLE_MS = 250
/** Proxies drop idle streams; a comment line keeps the server-sent event stream open. */
const KEEPALIVE_MS = 15_000
/** Events a new dashboard gets at once, before live ones. */
const BACKLOG_EVENTS = 100

export interface MonitorServerInit {
  host: string
  /** 0 picks a free port. */
  port: number
  token: string
  metrics: () => Promise<{ body: string, contentType: string }>
  snapshot: () => ClusterSnapshot
  /** Calls back on every change of the cluster view; returns its unsubscribe. */
  onViewChange: (listener: () => void) => () => void
  /** The cluster's events: reading them makes this host follow the stream. */
  events: EventReader
  log: Logger
}

/**
 * The agent's HTTP face, loopback by default: `/metrics` for Prometheus, `/` the dashboard,
 * `/api/cluster` and `/api/events` as JSON, `/api/stream` live updates as server-sent events.
 * Every path wants the token: `Authorization: Bearer` (Prometheus' `bearer_token_file`), or the
 * cookie the dashboard gets by opening `/?token=…` once (then redirected, so the token leaves
 * the address bar and history).
 */
export class MonitorServer {
  private server: Server | undefined
  private readonly streams = new Set<() => void>()
  private address: AddressInfo | undefined

  constructor (private readonly init: MonitorServerInit) {}

  get url (): string {
    const a = this.address
    if (a === undefined) throw new Error('monitor server not started')
    return urlOf('http', a)
  }

  async start (): Promise<void> {
    const server = createServer((req, res) => {
      this.route(req, res).catch((err: unknown) => {
        this.init.log.warn('monitor request failed', { path: req.url, err: (err as Error).message })
        if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n')
        else res.end()
      })
    })
    this.address = await listenOn(server, this.init.host, this.init.port)
    this.server = server
  }

  async stop (): Promise<void> {
    for (const close of this.streams) close()
    const server = this.server
    this.server = undefined
    await closeServer(server)
  }

  private async route (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'only GET\n')
    if (url.pathname === '/' && url.searchParams.has('token')) {
      if (!tokenMatches(this.init.token, url.searchParams.get('token') ?? undefined)) return this.denied(res)
      res.writeHead(303, { location: '/', 'set-cookie': `${COOKIE}=${this.init.token}; HttpOnly; SameSite=Strict; Path=/`, 'cache-control': 'no-store' })
      res.end()
      return
    }
    if (!this.authorized(req)) return this.denied(res)
    switch (url.pathname) {
      case '/metrics': {
        const { body, contentType } = await this.init.metrics()
        return send(res, 200, contentType, body)
      }
      case '/':
        return send(res, 200, 'text/html; charset=utf-8', DASHBOARD_HTML)
      case '/api/cluster':
        return send(res, 200, 'application/json', JSON.stringify(this.init.snapshot()))
      case '/api/events': {
        await this.init.events.follow()
        const page = this.init.events.ring.list({ afterCursor: Number(url.searchParams.get('after') ?? 0), vm: url.searchParams.get('vm') ?? undefined })
        return send(res, 200, 'application/json', JSON.stringify(page))
      }
      case '/api/stream':
        this.stream(req, res)
        return
      default:
        return send(res, 404, 'text/plain', 'not found\n')
    }
  }

  private authorized (req: IncomingMessage): boolean {
    const auth = req.headers.authorization
    if (auth?.startsWith('Bearer ') === true && tokenMatches(this.init.token, auth.slice(7).trim())) return true
    const cookie = (req.headers.cookie ?? '').split(';').map((c) => c.trim()).find((c) => c.startsWith(`${COOKIE}=`))
    return tokenMatches(this.init.token, cookie?.slice(COOKIE.length + 1))
  }

  private denied (res: ServerResponse): void {
    send(res, 401, 'text/plain', 'token required: send "Authorization: Bearer <token>", or open /?token=<token> once; the token is in the agent\'s data dir (monitor.token)\n', { 'www-authenticate': 'Bearer' })
  }

  /** Server-sent events: `snapshot` (the whole cluster, throttled) and `event` (each cluster event). */
  private stream (req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
    const write = (type: string, data: unknown): void => { res.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`) }
    write('snapshot', this.init.snapshot())
    const { ring } = this.init.events
    // Followed while the dashboard is open; what the hosts kept arrives as their pulls come in.
    const release = this.init.events.hold()
    const backlog = ring.list({ afterCursor: Math.max(0, ring.lastCursor - BACKLOG_EVENTS) })
    for (const r of backlog.events) write('event', r)

    let timer: NodeJS.Timeout | undefined
    const onView = (): void => {
      timer ??= setTimeout(() => { timer = undefined; write('snapshot', this.init.snapshot()) }, SNAPSHOT_THROTTLE_MS)
    }
    const offView = this.init.onViewChange(onView)
    const offEvents = ring.subscribe((r: EventRecord) => { write('event', r) })
    const keepalive = setInterval(() => { res.write(': keepalive\n\n') }, KEEPALIVE_MS)
    keepalive.unref()
    const close = (): void => {
      offView()
      offEvents()
      release()
      clearInterval(keepalive)
      if (timer !== undefined) clearTimeout(timer)
      this.streams.delete(close)
      res.end()
    }
    this.streams.add(close)
    req.on('close', close)
  }
}

function send (res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers })
  res.end(body)
}
