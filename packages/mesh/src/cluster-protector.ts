/**
 * The private cluster: a libp2p ConnectionProtector speaking the private-network v1 protocol
 * (the swarm-key PSK of IPFS and @libp2p/pnet, byte-compatible with both): each side sends a
 * random 24-byte nonce, then everything is XSalsa20(psk, nonce) in each direction. A peer with
 * another key produces garbage that the noise handshake refuses.
 *
 * Own implementation rather than @libp2p/pnet's preSharedKey, whose cipher crashes the process
 * under load (see xsalsa20-stream.ts).
 */
import { AbstractMultiaddrConnection, byteStream } from '@libp2p/utils'
import type { AbortOptions, ConnectionProtector, MessageStream, MultiaddrConnection } from '@libp2p/interface'
import { parseClusterKey } from './keys.js'
import { XSalsa20Stream } from './xsalsa20-stream.js'

const NONCE_BYTES = 24
const PSK_BYTES = 32
/** The nonce exchange must finish within this (the upgrader passes its own signal when it has one). */
export const NONCE_EXCHANGE_TIMEOUT_MS = 1000

export interface ClusterProtectorInit {
  /** The cluster key in swarm-key format (see generateClusterKey). */
  clusterKey: Uint8Array
  timeoutMs?: number
}

/** `createLibp2p({ connectionProtector: clusterProtector({ clusterKey }) })` */
export function clusterProtector (init: ClusterProtectorInit): () => ConnectionProtector {
  const psk = pskOf(init.clusterKey)
  const timeoutMs = init.timeoutMs ?? NONCE_EXCHANGE_TIMEOUT_MS
  return () => ({
    [Symbol.toStringTag]: '@meshvirt/mesh:cluster-protector',
    async protect (connection: MessageStream, options?: AbortOptions): Promise<MessageStream> {
      const localNonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES))
      const opts = options?.signal != null ? options : { signal: AbortSignal.timeout(timeoutMs) }
      const bytes = byteStream(connection)
      const [remote] = await Promise.all([bytes.read({ bytes: NONCE_BYTES, ...opts }), bytes.write(localNonce, opts)])
      return new SealedConnection(bytes.unwrap() as MultiaddrConnection, new XSalsa20Stream(psk, localNonce), new XSalsa20Stream(psk, remote.subarray()))
    }
  }) as ConnectionProtector
}

/** The 32 key bytes from the swarm-key text. */
function pskOf (clusterKey: Uint8Array): Uint8Array {
  const hex = new TextDecoder().decode(parseClusterKey(clusterKey)).split('\n')[2] ?? ''
  const psk = Uint8Array.from(Buffer.from(hex, 'hex'))
  if (psk.length !== PSK_BYTES) throw new Error('cluster key must hold 32 bytes')
  return psk
}

type SendData = Parameters<AbstractMultiaddrConnection['sendData']>[0]

/** The connection seen through the cipher; flow control and closing pass straight through. */
class SealedConnection extends AbstractMultiaddrConnection {
  constructor (private readonly inner: MultiaddrConnection, private readonly outbound: XSalsa20Stream, inbound: XSalsa20Stream) {
    super({ log: inner.log.newScope('cluster-protector'), remoteAddr: inner.remoteAddr, direction: inner.direction })
    inner.addEventListener('message', (evt) => {
      try {
        if (evt.data instanceof Uint8Array) this.onData(inbound.update(evt.data))
        else for (const chunk of evt.data) this.onData(inbound.update(chunk))
      } catch (err) {
        this.abort(err instanceof Error ? err : new Error(String(err)))
      }
    })
    inner.addEventListener('drain', () => { this.onMuxerDrain() })
    inner.addEventListener('close', (evt) => {
      if (evt.error == null) this.onTransportClosed()
      else if (evt.local === true) this.abort(evt.error)
      else this.onRemoteReset()
    })
  }

  async sendClose (options?: AbortOptions): Promise<void> {
    await this.inner.close(options)
  }

  sendData (data: SendData): { sentBytes: number, canSendMore: boolean } {
    return { sentBytes: data.byteLength, canSendMore: this.inner.send(this.outbound.update(data.subarray())) }
  }

  sendReset (err: Error): void {
    this.inner.abort(err)
  }

  sendPause (): void {
    this.inner.pause()
  }

  sendResume (): void {
    this.inner.resume()
  }
}
