import { describe, expect, it } from 'vitest'
import { MIGRATION_TLS_ID, MIGRATION_TLS_PRIORITY_AES, checkPsk, hostHasAes, pskFileContents, tlsCredsObject } from '../src/index.js'
import { readFileSync } from 'node:fs'

const KEY = 'ab'.repeat(32)

describe('migration TLS-PSK credentials (pure parts)', () => {
  it('keys.psk holds one username:hexkey line', () => {
    expect(pskFileContents({ pskHex: KEY })).toBe(`meshvirt:${KEY}\n`)
  })

  it.each([
    ['too short (128 bits)', 'ab'.repeat(16)],
    ['upper case', 'AB'.repeat(32)],
    ['not hex', 'zz'.repeat(32)],
    ['a newline smuggling a second identity', `${'ab'.repeat(31)}\nx:`]
  ])('refuses a key that is %s', (_what, pskHex) => {
    expect(() => { checkPsk({ pskHex }) }).toThrow(/64 lower-case hex digits/)
    expect(() => pskFileContents({ pskHex })).toThrow()
  })

  it('server and client objects: same id and dir, the client names its identity', () => {
    expect(tlsCredsObject('server', '/d')).toEqual({ 'qom-type': 'tls-creds-psk', id: MIGRATION_TLS_ID, endpoint: 'server', dir: '/d' })
    expect(tlsCredsObject('client', '/d')).toEqual({ 'qom-type': 'tls-creds-psk', id: MIGRATION_TLS_ID, endpoint: 'client', dir: '/d', username: 'meshvirt' })
  })

  it('with AES instructions both ends leave CHACHA20 out (AES-GCM is the session cipher); the flag is read from /proc/cpuinfo', () => {
    expect(MIGRATION_TLS_PRIORITY_AES).toBe('NORMAL:-CHACHA20-POLY1305')
    expect(tlsCredsObject('server', '/d', { aes: true })).toMatchObject({ endpoint: 'server', priority: MIGRATION_TLS_PRIORITY_AES })
    expect(tlsCredsObject('client', '/d', { aes: true })).toMatchObject({ endpoint: 'client', username: 'meshvirt', priority: MIGRATION_TLS_PRIORITY_AES })
    expect(tlsCredsObject('client', '/d', { aes: false })).not.toHaveProperty('priority')
    expect(hostHasAes()).toBe(/^flags\s*:.*\baes\b/m.test(readFileSync('/proc/cpuinfo', 'utf8')))
  })
})
