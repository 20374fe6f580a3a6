import { describe, expect, it } from 'vitest'
import { MAX_SSH_KEYS, MAX_USER_DATA_BYTES, validateGuestConfig } from '../src/guest/guest-config-rules.js'
import type { meshvirt } from '@meshvirt/proto'

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@desk'

describe('validateGuestConfig', () => {
  const ok: Array<[string, meshvirt.v1.IGuestConfig | null]> = [
    ['no guest config', null],
    ['empty', {}],
    ['a one-label hostname', { hostname: 'web1' }],
    ['a dotted hostname with 63-char labels', { hostname: 'a'.repeat(63) + '.example' }],
    ['ed25519, rsa and ecdsa keys, one with options', {
      sshAuthorizedKeys: [KEY, 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ==', 'from="10.0.0.1" ecdsa-sha2-nistp256 AAAAE2VjZHNh x']
    }],
    [`${MAX_SSH_KEYS} keys`, { sshAuthorizedKeys: Array(MAX_SSH_KEYS).fill(KEY) }],
    ['64 KiB of user-data', { userData: 'x'.repeat(MAX_USER_DATA_BYTES) }]
  ]
  for (const [name, guest] of ok) it(`accepts ${name}`, () => { expect(() => { validateGuestConfig(guest) }).not.toThrow() })

  const bad: Array<[string, meshvirt.v1.IGuestConfig, RegExp]> = [
    ['a 64-char label', { hostname: 'a'.repeat(64) }, /RFC 1123/],
    ['a label ending in -', { hostname: 'web-.example' }, /not starting or ending with '-'/],
    ['an underscore', { hostname: 'my_host' }, /--hostname 'my_host'/],
    ['an empty label', { hostname: 'a..b' }, /RFC 1123/],
    ['too many keys', { sshAuthorizedKeys: Array(MAX_SSH_KEYS + 1).fill(KEY) }, /at most 16 SSH keys/],
    ['a private key', { sshAuthorizedKeys: ['-----BEGIN OPENSSH PRIVATE KEY-----'] }, /SSH key 1 .* is not an OpenSSH public key/],
    ['two keys in one entry', { sshAuthorizedKeys: [KEY + '\n' + KEY] }, /several lines/],
    ['user-data over 64 KiB', { userData: 'é'.repeat(MAX_USER_DATA_BYTES / 2 + 1) }, /65538 bytes; at most 65536/]
  ]
  for (const [name, guest, msg] of bad) {
    it(`refuses ${name}`, () => {
      expect(() => { validateGuestConfig(guest) }).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(msg) }))
    })
  }
})
