/**
 * Ed25519 with the key parsed once. @libp2p/crypto (5.1) imports the key into OpenSSL from a JWK
 * on every `verify` and every `sign`; gossipsub verifies each advert's signature (StrictSign)
 * and signs each one published, so at placement load that import was ~3 % of an agent's CPU
 * (profile of 10 agent processes, `npm run bench -- placement-throughput`). Measured here:
 * verify 95 → 72 µs with the KeyObject kept.
 *
 * The library's own key classes are given methods that keep the KeyObject: public keys in a
 * bounded map by their raw bytes (gossipsub makes a new key object per message), private keys
 * on the instance. Same answers: Node's `crypto.verify`/`crypto.sign` with the same key and data,
 * and anything unusual (a signature of the wrong length, a key of the wrong length) goes to the
 * library's own code, which throws as before.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'
import { generateKeyPair, publicKeyFromRaw } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey, Ed25519PublicKey } from '@libp2p/interface'

/** Public keys kept: more than the hosts of a large cluster; the oldest goes first beyond it. */
export const MAX_CACHED_PUBLIC_KEYS = 4096

const publicKeys = new Map<string, KeyObject>()
const privateKeys = new WeakMap<object, KeyObject>()

export function publicKeyObject (raw: Uint8Array): KeyObject {
  const id = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64url')
  let key = publicKeys.get(id)
  if (key === undefined) {
    key = createPublicKey({ format: 'jwk', key: { crv: 'Ed25519', kty: 'OKP', x: id } })
    if (publicKeys.size >= MAX_CACHED_PUBLIC_KEYS) publicKeys.delete(publicKeys.keys().next().value as string)
    publicKeys.set(id, key)
  }
  return key
}

export function cachedPublicKeys (): number {
  return publicKeys.size
}

let installed = false

/** Gives @libp2p/crypto's Ed25519 key classes the cached `verify` and `sign`; once per process. */
export async function installEd25519KeyCache (): Promise<void> {
  if (installed) return
  installed = true
  const pair = await generateKeyPair('Ed25519') as Ed25519PrivateKey
  const publicProto = Object.getPrototypeOf(publicKeyFromRaw(pair.publicKey.raw)) as Ed25519PublicKey
  const privateProto = Object.getPrototypeOf(pair) as Ed25519PrivateKey
  const libraryVerify = publicProto.verify
  const librarySign = privateProto.sign
  publicProto.verify = function (this: Ed25519PublicKey, data, sig, options) {
    if (this.raw.byteLength !== 32 || sig.byteLength !== 64 || !(data instanceof Uint8Array)) return libraryVerify.call(this, data, sig, options)
    options?.signal?.throwIfAborted()
    return verify(null, data, publicKeyObject(this.raw), sig)
  }
  privateProto.sign = function (this: Ed25519PrivateKey, data, options) {
    if (this.raw.byteLength !== 64 || !(data instanceof Uint8Array)) return librarySign.call(this, data, options)
    options?.signal?.throwIfAborted()
    let key = privateKeys.get(this)
    if (key === undefined) {
      const b64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url')
      key = createPrivateKey({ format: 'jwk', key: { crv: 'Ed25519', kty: 'OKP', d: b64(this.raw.subarray(0, 32)), x: b64(this.raw.subarray(32)) } })
      privateKeys.set(this, key)
    }
    return sign(null, data, key)
  }
}
