/**
 * The private cluster: a libp2p ConnectionProtector in the shape of the private-network v1
 * protocol (a swarm-key PSK; each side sends a random IV, then everything it sends is a stream
 * cipher under (psk, its IV)). A peer with another key produces garbage that the noise
 * handshake refuses; noise then authenticates and encrypts as usual.
 *
 * The cipher is AES-256-CTR from Node's OpenSSL (AES-NI), not pnet v1's XSalsa20: pure-JS
 * XSalsa20 was the largest CPU cost of every stream here (≈ 1.4 s per 128 MiB each side, which
 * capped migration tunnels at ~25 MiB/s and made every request/response ~1 ms dearer), and
 * @libp2p/pnet's WASM XSalsa20 crashes the process under load (its instances share one memory whose views go stale). Only
 * meshvirt agents speak to each other, so IPFS byte compatibility buys nothing. A random 128-bit
 * IV per connection and direction never repeats in practice (birthday bound 2^64 connections).
 */
import { AbstractMultiaddrConnection, byteStream } from '@libp2p/utils'
import type { AbortOptions, ConnectionProtector, MessageStream, MultiaddrConnection } from '@libp2p/interface'
import { createCipheriv, randomBytes, type Cipher } from 'node:crypto'
import { parseClusterKey } from './keys.js'

/** The keystream of one direction: CTR mode XORs, so encrypting and decrypting are the same call. */
interface KeyStream { update: (data: Uint8Array) => Uint8Array }

function aesCtr (psk: Uint8Array, iv: Uint8Array): KeyStream {
  const cipher: Cipher = createCipheriv('aes-256-ctr', psk, iv)
  return { update: (data) => cipher.update(data) }
}

const NONCE_BYTES = 16
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
      const localNonce = new Uint8Array(randomBytes(NONCE_BYTES))
      const opts = options?.signal != null ? options : { signal: AbortSignal.timeout(timeoutMs) }
      const bytes = byteStream(connection)
      const [remote] = await Promise.all([bytes.read({ bytes: NONCE_BYTES, ...opts }), bytes.write(localNonce, opts)])
      return new SealedConnection(bytes.unwrap() as MultiaddrConnection, aesCtr(psk, localNonce), aesCtr(psk, remote.subarray()))
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
  constructor (private readonly inner: MultiaddrConnection, private readonly outbound: KeyStream, inbound: KeyStream) {
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
