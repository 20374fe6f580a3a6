import { describe, expect, it } from 'vitest'
import type { meshvirt } from '@meshvirt/proto'
import { parseVmSpec } from '../src/vm/vm-spec.js'

const MIB = 2 ** 20
const ok: meshvirt.v1.IVmSpec = { name: 'web', resources: { vcpus: 1, memoryBytes: 64 * MIB }, boot: { kernel: '/k' } }

describe('a refused spec names the field at fault (details.field), for the CLI to say its flag', () => {
  it.each<[string, meshvirt.v1.IVmSpec, string, RegExp]>([
    ['a bad name', { ...ok, name: 'Bad_Name' }, 'name', /VM name 'Bad_Name'/],
    ['too many vCPUs', { ...ok, resources: { vcpus: 300, memoryBytes: 64 * MIB } }, 'resources.vcpus', /vcpus must be between 1 and 256, got 300/],
    ['too little memory', { ...ok, resources: { vcpus: 1, memoryBytes: 8 * MIB } }, 'resources.memoryBytes', /memory must be at least 32 MiB/],
    ['a disk not in MiB', { ...ok, resources: { vcpus: 1, memoryBytes: 64 * MIB, diskBytes: MIB + 1 } }, 'resources.diskBytes', /disk must be a whole number of MiB/],
    ['room for fewer vCPUs', { ...ok, maxVcpus: 100 }, 'maxVcpus', /--max-vcpus must be from the vCPUs/],
    ['room below the memory', { ...ok, maxMemoryBytes: 32 * MIB }, 'maxMemoryBytes', /--max-memory must be/],
    ['nothing to boot', { ...ok, boot: {} }, 'boot', /needs something to boot/],
    ['an image without a disk', { ...ok, boot: { image: '/base.qcow2' } }, 'resources.diskBytes', /--image needs a --disk/],
    ['a bad library image name', { ...ok, resources: { vcpus: 1, memoryBytes: 64 * MIB, diskBytes: 64 * MIB }, boot: { library: { ref: 'Bad Name' } } }, 'boot.library.ref', /image name 'Bad Name'/],
    ['too many replicas', { ...ok, replicas: 99 }, 'replicas', /replicas must be between 0/],
    ['replicas without a disk', { ...ok, replicas: 1 }, 'resources.diskBytes', /replicas copy the VM's disk/],
    ['a bad RPO', { ...ok, rpoMs: 1 }, 'rpoMs', /rpo must be between/],
    ['a bad spread key', { ...ok, spreadBy: 'a b' }, 'spreadBy', /--spread-by 'a b'/],
    ['a bad network name', { ...ok, nics: [{ network: 'lan' }, { network: 'Bad!' }] }, 'nics[1].network', /--net 'Bad!' is not a network name/],
    ['a bad hostname', { ...ok, guest: { hostname: '-x' } }, 'guest.hostname', /--hostname '-x'/],
    ['a bad SSH key', { ...ok, guest: { sshAuthorizedKeys: ['nope'] } }, 'guest.sshAuthorizedKeys', /SSH key 1/]
  ])('%s → %s', (_what, wire, field, message) => {
    expect(() => parseVmSpec(wire)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(message), details: { field } }))
  })

  it('a valid spec passes', () => {
    expect(parseVmSpec(ok).name).toBe('web')
  })
})
