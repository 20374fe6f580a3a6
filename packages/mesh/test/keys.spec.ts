import { describe, expect, it } from 'vitest'
import { generateClusterKey, generateIdentity, identityFromBytes, parseClusterKey } from '../src/index.js'

describe('cluster key', () => {
  it('generates the pnet v1 format and parses it back', () => {
    const key = generateClusterKey()
    const text = new TextDecoder().decode(key)
    expect(text).toMatch(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}$/)
    expect(parseClusterKey(key)).toEqual(key)
  })

  it('accepts a trailing newline and CRLF line ends', () => {
    const key = generateClusterKey()
    const crlf = new TextEncoder().encode(new TextDecoder().decode(key).replace(/\n/g, '\r\n') + '\r\n')
    expect(parseClusterKey(crlf)).toEqual(key)
  })

  it.each([
    ['garbage', 'hello'],
    ['a wrong header', '/key/swarm/psk/2.0.0/\n/base16/\n' + 'a'.repeat(64)],
    ['another codec', '/key/swarm/psk/1.0.0/\n/base64/\n' + 'a'.repeat(64)],
    ['a short key', '/key/swarm/psk/1.0.0/\n/base16/\n' + 'a'.repeat(63)]
  ])('refuses %s with INVALID_CLUSTER_KEY', (_name, text) => {
    expect(() => parseClusterKey(new TextEncoder().encode(text))).toThrow(expect.objectContaining({ code: 'INVALID_CLUSTER_KEY' }))
  })
})

describe('identity', () => {
  it('round-trips through bytes with the same host id', async () => {
    const id = await generateIdentity()
    expect(id.hostId).toMatch(/^12D3KooW/)
    const again = identityFromBytes(id.bytes)
    expect(again.hostId).toBe(id.hostId)
  })

  it('refuses bytes that are not a key', () => {
    expect(() => identityFromBytes(Uint8Array.from([1, 2, 3]))).toThrow(expect.objectContaining({ code: 'INVALID_IDENTITY_KEY' }))
  })
})
