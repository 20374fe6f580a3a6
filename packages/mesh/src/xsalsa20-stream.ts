/**
 * XSalsa20 as a byte stream cipher (any chunk sizes, keystream continues across calls), as the
 * libp2p private-network v1 protocol uses it. Built on @noble/ciphers' stateless salsa20:
 * the position is kept here and a chunk that starts inside a 64-byte block is padded in front.
 *
 * Why not the `xsalsa20` package that @libp2p/pnet uses: its WASM instances share one memory
 * and each keeps a view of it, which goes stale when another instance grows the memory; a stale
 * view (length 0) grows the memory again on every call, so one write over ~640 KB followed by a
 * few hundred small ones on two connections exceeds the 64 MB maximum and throws from a socket
 * event handler, killing the process (xsalsa20 1.2.0, measured here).
 */
import { hsalsa, salsa20 } from '@noble/ciphers/salsa.js'

const BLOCK_BYTES = 64
/** "expand 32-byte k" as little-endian words: the Salsa20 constant for 256-bit keys. */
const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574])
/** noble's block counter is 32 bits: 2^32 blocks of 64 bytes per key and nonce. */
export const MAX_STREAM_BYTES = 2 ** 32 * BLOCK_BYTES

export class XSalsa20Stream {
  private offset = 0
  /** XSalsa20 = Salsa20 under HSalsa20(key, nonce[0..16]) with nonce[16..24]: derived once. */
  private readonly subkey: Uint8Array
  private readonly nonce8: Uint8Array

  constructor (key: Uint8Array, nonce: Uint8Array) {
    const out = new Uint32Array(8)
    hsalsa(SIGMA, words(key, 8), words(nonce.subarray(0, 16), 4), out)
    this.subkey = new Uint8Array(out.buffer)
    this.nonce8 = nonce.slice(16, 24)
  }

  /** XORs `input` with the next `input.length` bytes of keystream. */
  update (input: Uint8Array): Uint8Array {
    if (this.offset + input.length > MAX_STREAM_BYTES) {
      throw new Error('private network stream exhausted its keystream (256 GiB); the connection must be re-established')
    }
    const skip = this.offset % BLOCK_BYTES
    const counter = Math.floor(this.offset / BLOCK_BYTES)
    this.offset += input.length
    if (skip === 0) return salsa20(this.subkey, this.nonce8, input, undefined, counter)
    const padded = new Uint8Array(skip + input.length)
    padded.set(input, skip)
    return salsa20(this.subkey, this.nonce8, padded, padded, counter).subarray(skip)
  }
}

/** Little-endian 32-bit words of `bytes` (x86 and arm64 hosts are little-endian). */
function words (bytes: Uint8Array, n: number): Uint32Array {
  const out = new Uint32Array(n)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let i = 0; i < n; i++) out[i] = view.getUint32(i * 4, true)
  return out
}
