import { generateKeyPair, publicKeyFromRaw } from '@libp2p/crypto/keys'
import { createPrivateKey, sign } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { cachedPublicKeys, installEd25519KeyCache } from '../src/ed25519-key-cache.js'

describe('Ed25519 keys parsed once', () => {
  it('signs and verifies exactly as the library does', async () => {
    await installEd25519KeyCache()
    const before = cachedPublicKeys()
    const a = await generateKeyPair('Ed25519')
    const b = await generateKeyPair('Ed25519')
    const msg = new TextEncoder().encode('advert of host-1, seq 42')
    const sig = await a.sign(msg)
    // The same signature as a key imported afresh gives (Ed25519 is deterministic).
    const b64 = (x: Uint8Array): string => Buffer.from(x).toString('base64url')
    const fresh = createPrivateKey({ format: 'jwk', key: { crv: 'Ed25519', kty: 'OKP', d: b64(a.raw.subarray(0, 32)), x: b64(a.raw.subarray(32)) } })
    expect(Buffer.from(sig).equals(sign(null, msg, fresh))).toBe(true)
    const pub = publicKeyFromRaw(a.publicKey.raw)
    expect(await pub.verify(msg, sig)).toBe(true)
    expect(await publicKeyFromRaw(a.publicKey.raw).verify(msg, sig)).toBe(true)
    // One key object for both instances of host-1's key.
    expect(cachedPublicKeys()).toBe(before + 1)
    // A changed message, another host's key, a changed signature: refused.
    expect(await pub.verify(new TextEncoder().encode('advert of host-1, seq 43'), sig)).toBe(false)
    expect(await b.publicKey.verify(msg, sig)).toBe(false)
    const bad = Uint8Array.from(sig); bad[0] = (bad[0] as number) ^ 1
    expect(await pub.verify(msg, bad)).toBe(false)
    // A signature of the wrong length goes to the library, which throws as it always did.
    expect(() => pub.verify(msg, sig.subarray(0, 63))).toThrow(/64 bytes/)
    // A second signer keeps its own key.
    expect(await b.publicKey.verify(msg, await b.sign(msg))).toBe(true)
  })
})
