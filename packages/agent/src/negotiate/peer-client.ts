import type { MeshNode } from '@meshvirt/mesh'
import { pb, type meshvirt } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'
import { CONTROL_PROTOCOL, kindOf, NEGOTIATE_PROTOCOL, NEGOTIATE_TIMEOUT_MS, PROTOCOL_OF } from './protocols.js'

type LocalHandler = (bytes: Uint8Array, peer: string) => Promise<Uint8Array>

/**
 * Control requests that only read: asked again, once, when the stream to the host broke before an
 * answer (a reset or an early end; not a time-out), since asking twice cannot change anything.
 * Seen in CI at normal load: a forwarded `inspectVm` ended with "Unexpected EOF" and failed a
 * `vm create` whose VM was starting fine.
 */
const READ_ONLY_CONTROL = ['inspectVm', 'listVms', 'listHosts', 'readConsole', 'listNetworks', 'inspectNetwork', 'listImages', 'inspectImage', 'listEvents'] as const

/** How long a peer's having declared a protocol is taken as known (a peer store read per request cost ~7 % of one). */
const SERVES_KNOWN_MS = 60_000

/**
 * Calls a protocol on a host of the cluster: over the mesh for a peer, straight into the
 * local handler for this host (a broker is often its own best candidate). Decoding and error
 * mapping live here, so the broker and the control router speak in messages.
 */

export class PeerClient {
  private readonly local = new Map<string, LocalHandler>()
  /** `host protocol` → until when it is known to be served. */
  private readonly servedUntil = new Map<string, number>()

  constructor (private readonly mesh: Pick<MeshNode, 'request' | 'hostId' | 'serves'>) {}

  registerLocal (protocol: string, handler: LocalHandler): void {
    this.local.set(protocol, handler)
  }

  /**
   * A request to a host on the protocol its kind belongs to; a peer that has not declared that
   * protocol (an agent of the release before the split) is asked on the placement protocol.
   */
  async negotiate (host: string, req: meshvirt.v1.INegotiateRequest, timeoutMs = NEGOTIATE_TIMEOUT_MS): Promise<meshvirt.v1.NegotiateResponse> {
    const kind = kindOf(req)
    const own = kind === undefined ? NEGOTIATE_PROTOCOL : PROTOCOL_OF[kind]
    const protocol = own === NEGOTIATE_PROTOCOL || host === this.mesh.hostId || await this.serves(host, own) ? own : NEGOTIATE_PROTOCOL
    const bytes = await this.call(host, protocol, pb.NegotiateRequest.encode(req).finish(), timeoutMs)
    const res = pb.NegotiateResponse.decode(bytes)
    if (res.error != null) throw ControlError.fromWire(res.error)
    return res
  }

  private async serves (host: string, protocol: string): Promise<boolean> {
    const key = `${host} ${protocol}`
    if ((this.servedUntil.get(key) ?? 0) > Date.now()) return true
    if (!await this.mesh.serves(host, protocol)) return false
    this.servedUntil.set(key, Date.now() + SERVES_KNOWN_MS)
    return true
  }

  async control (host: string, req: meshvirt.v1.IControlRequest, timeoutMs = 60_000): Promise<meshvirt.v1.ControlResponse> {
    const encoded = pb.ControlRequest.encode(req).finish()
    const started = Date.now()
    let bytes: Uint8Array
    try {
      bytes = await this.call(host, CONTROL_PROTOCOL, encoded, timeoutMs)
    } catch (err) {
      const left = timeoutMs - (Date.now() - started)
      if (!(err instanceof PeerCallError) || !err.streamBroke || !readOnly(req) || left < 100) throw err
      bytes = await this.call(host, CONTROL_PROTOCOL, encoded, left)
    }
    const res = pb.ControlResponse.decode(bytes)
    if (res.error != null) throw ControlError.fromWire(res.error)
    return res
  }

  private async call (host: string, protocol: string, bytes: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (host === this.mesh.hostId) {
      const handler = this.local.get(protocol)
      if (handler === undefined) throw new ControlError('UNAVAILABLE', `no local handler for ${protocol}`)
      return await handler(bytes, host)
    }
    try {
      return await this.mesh.request(host, protocol, bytes, { timeoutMs })
    } catch (err) {
      // 'failed': the stream broke (reset, early end, dial refused); a time-out or an abort is not that.
      throw new PeerCallError(`host ${host.slice(-12)} did not answer ${protocol}: ${(err as Error).message}`, (err as Error).name === 'RequestFailedError')
    }
  }
}

/** A peer that did not answer; `streamBroke`: the stream broke (reset, early end, dial refused), not a time-out or an abort. */
class PeerCallError extends ControlError {
  constructor (message: string, readonly streamBroke: boolean) {
    super('UNAVAILABLE', message)
  }
}

function readOnly (req: meshvirt.v1.IControlRequest): boolean {
  return READ_ONLY_CONTROL.some((k) => req[k] != null)
}
