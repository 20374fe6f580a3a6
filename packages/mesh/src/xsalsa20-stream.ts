/**
 * XSalsa20 as a byte stream cipher (any chunk sizes, keystream continues across calls), as the
 * libp2p private-network v1 protocol uses it. Built on @noble/ciphers' stateless xsalsa20:
 * the position is kept here and a chunk that starts inside a 64-byte block is padded in front.
 *
 * Why not the `xsalsa20` package that @libp2p/pnet uses: its WASM instances share one memory
 * and each keeps a view of it, which goes stale when another instance grows the memory; a stale
 * view (length 0) grows the memory again on every call, so one write over ~640 KB followed by a
 * few hundred small ones on two connections exceeds the 64 MB maximum and throws from a socket
 * event handler, killing the process (xsalsa20 1.2.0, measured here).
 */
import { xsalsa20 } from '@noble/ciphers/salsa.js'

const BLOCK_BYTES = 64
/** noble's block counter is 32 bits: 2^32 blocks of 64 bytes per key and nonce. */
export const MAX_STREAM_BYTES = 2 ** 32 * BLOCK_BYTES

export class XSalsa20Stream {
  private offset = 0

  constructor (private readonly key: Uint8Array, private readonly nonce: Uint8Array) {}

  /** XORs `input` with the next `input.length` bytes of keystream. */
  update (input: Uint8Array): Uint8Array {
    if (this.offset + input.length > MAX_STREAM_BYTES) {
      throw new Error('private network stream exhausted its keystream (256 GiB); the connection must be re-established')
    }
    const skip = this.offset % BLOCK_BYTES
    const counter = Math.floor(this.offset / BLOCK_BYTES)
    this.offset += input.length
    if (skip === 0) return xsalsa20(this.key, this.nonce, input, undefined, counter)
    const padded = new Uint8Array(skip + input.length)
    padded.set(input, skip)
    return xsalsa20(this.key, this.nonce, padded, padded, counter).subarray(skip)
  }
}
