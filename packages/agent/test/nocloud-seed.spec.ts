import { describe, expect, it } from 'vitest'
import { DEFAULT_USER_DATA, nocloudSeed } from '../src/guest/nocloud-seed.js'
import type { SeedInput } from '../src/guest/nocloud-seed.js'

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@desk'
const base: SeedInput = { vmId: 'vm-0123456789abcdef', vmName: 'web' }

describe('nocloudSeed: the files of a VM\'s cidata seed', () => {
  const cases: Array<{ name: string, input: SeedInput, files: Record<string, string> }> = [
    {
      name: 'bare VM: instance-id = VM id, hostname = VM name, default user-data, no network-config',
      input: base,
      files: {
        'meta-data': 'instance-id: "vm-0123456789abcdef"\nlocal-hostname: "web"\n',
        'user-data': DEFAULT_USER_DATA
      }
    },
    {
      name: 'hostname and keys in meta-data; the user\'s user-data passed as given',
      input: { ...base, hostname: 'web1.example', sshAuthorizedKeys: [KEY + '\n'], userData: '#!/bin/sh\necho hi\n' },
      files: {
        'meta-data': `instance-id: "vm-0123456789abcdef"\nlocal-hostname: "web1.example"\npublic-keys:\n  - "${KEY}"\n`,
        'user-data': '#!/bin/sh\necho hi\n'
      }
    },
    {
      name: 'two NICs: match by MAC, static address, default gateway (gateway4: cloud-init 22.4 refuses `to: default`) and nameservers on the first only',
      input: {
        ...base,
        nics: [
          { mac: '52:54:00:AA:BB:01', ip: '10.8.0.5', prefix: 24, gateway: '10.8.0.1', mtu: 1450, nameservers: ['10.8.0.1'] },
          { mac: '52:54:00:aa:bb:02', ip: '10.9.0.5', prefix: 16, gateway: '10.9.0.1', mtu: 0 }
        ]
      },
      files: {
        'meta-data': 'instance-id: "vm-0123456789abcdef"\nlocal-hostname: "web"\n',
        'network-config': [
          'version: 2', 'ethernets:',
          '  nic0:', '    match:', '      macaddress: "52:54:00:aa:bb:01"', '    set-name: "eth0"',
          '    addresses:', '      - "10.8.0.5/24"',
          '    gateway4: "10.8.0.1"',
          '    nameservers:', '      addresses:', '        - "10.8.0.1"',
          '    mtu: 1450',
          '  nic1:', '    match:', '      macaddress: "52:54:00:aa:bb:02"', '    set-name: "eth1"',
          '    addresses:', '      - "10.9.0.5/16"', ''
        ].join('\n'),
        'user-data': DEFAULT_USER_DATA
      }
    },
    {
      name: 'a hostile hostname stays one quoted YAML scalar',
      input: { ...base, hostname: 'a"\nb: c' },
      files: {
        'meta-data': 'instance-id: "vm-0123456789abcdef"\nlocal-hostname: "a\\"\\nb: c"\n',
        'user-data': DEFAULT_USER_DATA
      }
    }
  ]

  for (const c of cases) {
    it(c.name, () => {
      const files = nocloudSeed(c.input)
      expect(Object.fromEntries(files.map((f) => [f.name, f.content]))).toEqual(c.files)
      expect(files.map((f) => f.name)).toEqual(Object.keys(c.files).sort())
    })
  }

  it('is deterministic: the same input gives the same bytes', () => {
    const input: SeedInput = { ...base, sshAuthorizedKeys: [KEY], nics: [{ mac: '52:54:00:00:00:01', ip: '10.0.0.2', prefix: 24, gateway: '10.0.0.1', mtu: 1400 }] }
    expect(JSON.stringify(nocloudSeed(input))).toBe(JSON.stringify(nocloudSeed(structuredClone(input))))
  })
})
