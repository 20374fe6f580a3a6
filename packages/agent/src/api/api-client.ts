import { X509Certificate } from 'node:crypto'
import { Agent, request } from 'node:https'
import { connect } from 'node:tls'
import type { Duplex } from 'node:stream'
import { WebSocket, createWebSocketStream } from 'ws'
import type { meshvirt } from '@meshvirt/proto'
import { caPin } from '../access/cluster-identity.js'
import { readTokenClaims } from '../access/user-token.js'
import { DEFAULT_CONTROL_TIMEOUT_MS } from '../control/control-client.js'
import { AgentUnreachableError, ControlError } from '../control/errors.js'
import { CONSOLE_SUBPROTOCOL } from './console-socket.js'
import { responseFromJson } from './json-wire.js'

/**
 * The API from a client (`meshvirt --endpoint`, scripts, tests): the same `call` as the control
 * socket's client, over HTTPS with a user token. The agent's certificate is trusted when the
 * cluster CA that signed it has the pin the token carries (or one given): no CA file to copy, no
 * trust on first use. The name in the certificate is not checked — any agent of the cluster may answer.
 */
export class ApiClient {
  private readonly url: URL
  /** Where to connect: the URL's host without IPv6 brackets, and its port. */
  private readonly target: { host: string, port: number }
  private readonly pin: string
  private ca: Promise<string> | undefined
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 })

  constructor (endpoint: string, private readonly token: string, opts: { caPin?: string } = {}) {
    try {
      this.url = new URL(endpoint)
    } catch {
      throw new ControlError('INVALID_ARGUMENT', `endpoint '${endpoint}' is not a URL: give https://HOST:PORT`)
    }
    if (this.url.protocol !== 'https:') throw new ControlError('INVALID_ARGUMENT', `endpoint ${endpoint} must be https://HOST:PORT`)
    this.target = { host: this.url.hostname.replace(/^\[|\]$/g, ''), port: this.url.port === '' ? 443 : Number(this.url.port) }
    const pin = opts.caPin ?? readTokenClaims(token)?.caPin
    if (pin === undefined) throw new ControlError('UNAUTHENTICATED', 'not a meshvirt user token (mvt1.…): get one with `meshvirt user add` on a host of the cluster')
    this.pin = pin
  }

  async call (body: Omit<meshvirt.v1.IControlRequest, 'requestId'>, opts: { timeoutMs?: number, signal?: AbortSignal } = {}): Promise<meshvirt.v1.ControlResponse> {
    const { status, json } = await this.send('POST', '/v1/control', wireJson(body), opts)
    const error = (json as { error?: meshvirt.v1.IError }).error
    if (status !== 200 || error != null) throw ControlError.fromWire(error ?? { code: 'INTERNAL', message: `HTTP ${status}` })
    return responseFromJson(json)
  }

  /** A VM's serial console, read-write, over the API's WebSocket: a stream of the console's bytes (paused). */
  async attachConsole (vm: meshvirt.v1.IVmRef, opts: { timeoutMs?: number } = {}): Promise<{ attached: meshvirt.v1.IConsoleAttached, socket: Duplex }> {
    const ca = await this.trustedCa()
    const ref = (vm.name ?? '') !== '' ? vm.name as string : vm.id ?? ''
    const ws = new WebSocket(`wss://${this.url.host}/v1/vms/${encodeURIComponent(ref)}/console/attach`, [CONSOLE_SUBPROTOCOL, this.token], {
      ca,
      // Passed on to tls.connect, where undefined means "fine" (ws's type says boolean).
      checkServerIdentity: (() => undefined) as unknown as () => boolean,
      handshakeTimeout: opts.timeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS
    })
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => { resolve() })
      ws.once('error', (err: NodeJS.ErrnoException) => { reject(unreachable(this.url, err)) })
      // A refusal is an HTTP answer with the control error in its body.
      ws.once('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          let error: meshvirt.v1.IError = { code: 'INTERNAL', message: `HTTP ${res.statusCode ?? 0}` }
          try { error = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error: meshvirt.v1.IError }).error } catch { /* not JSON */ }
          reject(ControlError.fromWire(error))
        })
      })
    })
    const socket = createWebSocketStream(ws)
    socket.pause()
    return { attached: { vmName: vm.name ?? '', vmId: vm.id ?? '' }, socket }
  }

  /** One HTTP exchange with the API (a REST route), the answer's status and JSON; a string body is sent as it is. */
  async send (method: string, path: string, body?: unknown, opts: { timeoutMs?: number, signal?: AbortSignal, headers?: Record<string, string> } = {}): Promise<{ status: number, json: unknown }> {
    const ca = await this.trustedCa()
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body)
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS
    return await new Promise((resolve, reject) => {
      const req = request({
        ...this.target,
        method,
        path,
        agent: this.agent,
        ca,
        checkServerIdentity: () => undefined,
        headers: { authorization: `Bearer ${this.token}`, accept: 'application/json', ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}), ...opts.headers },
        timeout: timeoutMs,
        ...(opts.signal !== undefined ? { signal: opts.signal } : {})
      }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          try {
            resolve({ status: res.statusCode ?? 0, json: text === '' ? {} : JSON.parse(text) })
          } catch {
            reject(new ControlError('INTERNAL', `the API answered HTTP ${res.statusCode ?? 0} with a body that is not JSON`))
          }
        })
      })
      req.on('timeout', () => { req.destroy(new ControlError('TIMEOUT', `the API did not answer within ${timeoutMs} ms`)) })
      req.on('error', (err: NodeJS.ErrnoException) => { reject(err instanceof ControlError ? err : unreachable(this.url, err)) })
      req.end(payload)
    })
  }

  close (): void {
    this.agent.destroy()
  }

  /** The CA certificate of the cluster, once its pin is checked against the chain the agent sends. */
  private async trustedCa (): Promise<string> {
    this.ca ??= new Promise<string>((resolve, reject) => {
      const socket = connect({ ...this.target, rejectUnauthorized: false })
      socket.setTimeout(DEFAULT_CONTROL_TIMEOUT_MS, () => { socket.destroy(new ControlError('TIMEOUT', `no TLS handshake with ${this.url.host}`)) })
      socket.once('error', (err: NodeJS.ErrnoException) => { reject(err instanceof ControlError ? err : unreachable(this.url, err)) })
      socket.once('secureConnect', () => {
        const leaf = socket.getPeerCertificate(true)
        socket.end()
        const issuer = leaf.issuerCertificate
        if (leaf.raw === undefined || issuer?.raw === undefined) return reject(new ControlError('UNAUTHENTICATED', `${this.url.host} sent no certificate chain: not a meshvirt agent's API`))
        const ca = new X509Certificate(issuer.raw)
        if (caPin(ca.publicKey) !== this.pin || !new X509Certificate(leaf.raw).verify(ca.publicKey)) {
          return reject(new ControlError('UNAUTHENTICATED', `${this.url.host}'s certificate is not signed by your cluster's CA (pin ${this.pin}): another cluster, or someone in between`))
        }
        resolve(ca.toString())
      })
    })
    this.ca.catch(() => { this.ca = undefined })
    return await this.ca
  }
}

/** A request as protobuf JSON (what POST /v1/control takes). */
function wireJson (body: Omit<meshvirt.v1.IControlRequest, 'requestId'>): Record<string, unknown> {
  return JSON.parse(JSON.stringify(body, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v))) as Record<string, unknown>
}

function unreachable (url: URL, err: NodeJS.ErrnoException): AgentUnreachableError {
  const why = err.code === 'ECONNREFUSED' ? 'nothing listens there (is the agent running with --api-listen?)' : err.code === 'ENOTFOUND' ? 'no such host' : err.message
  return new AgentUnreachableError(`cannot reach the API at ${url.origin}: ${why}`)
}
