import { describe, expect, it } from 'vitest'
import { pb, type meshvirt } from '@meshvirt/proto'
import { decodeVmSpec, encodeVmSpec, resourcesFromWire, vmSpecFromWire, vmSpecToWire } from '../src/vm/vm-spec-codec.js'
import { parseVmSpec } from '../src/vm/vm-spec.js'

const MIB = 2 ** 20

/** Every field of the wire's VmSpec set to something other than its default. */
const full: meshvirt.v1.IVmSpec = {
  name: 'web-1',
  resources: { vcpus: 2, memoryBytes: 512 * MIB, diskBytes: 1024 * MIB },
  boot: { kernel: '/k', initrd: '/i', cmdline: 'console=ttyS0', library: { ref: 'debian-12:latest', digest: 'sha256:' + 'a'.repeat(64) } },
  constraints: [{ key: 'zone', op: pb.LabelConstraint.Op.OP_NE, value: 'b' }, { key: 'ssd', op: pb.LabelConstraint.Op.OP_EXISTS }],
  group: 'web',
  affinity: ['db'],
  antiAffinity: ['web'],
  softAffinity: ['cache'],
  softAntiAffinity: ['batch'],
  policy: pb.PlacementPolicy.PLACEMENT_POLICY_SPREAD,
  host: 'host-a',
  accelerator: pb.Accelerator.ACCELERATOR_TCG,
  cpuModel: 'qemu64',
  replicas: 2,
  rpoMs: 30_000,
  spreadBy: 'site',
  metadata: { team: 'ops' },
  notMigratable: true,
  noBalance: true,
  restart: pb.RestartPolicy.RESTART_POLICY_ALWAYS,
  nics: [{ network: 'lan', ip: '10.0.0.5', mac: '52:54:00:00:00:01' }],
  guest: { hostname: 'web1', sshAuthorizedKeys: ['ssh-ed25519 AAAA x@y'], userData: '#cloud-config\n' },
  maxMemoryBytes: 2048 * MIB,
  maxVcpus: 4
}

describe('the VM spec codec: the wire read once, the domain inside', () => {
  it('reads every field, with names for enums and numbers for uint64s', () => {
    const spec = vmSpecFromWire(full)
    expect(spec).toMatchObject({
      resources: { vcpus: 2, memoryBytes: 512 * MIB, diskBytes: 1024 * MIB },
      boot: { kernel: '/k', image: '', library: { ref: 'debian-12:latest' } },
      constraints: [{ key: 'zone', op: 'ne', value: 'b' }, { key: 'ssd', op: 'exists' }],
      policy: 'spread',
      accelerator: 'tcg',
      restart: 'always',
      guest: { hostname: 'web1', sshAuthorizedKeys: ['ssh-ed25519 AAAA x@y'] },
      maxMemoryBytes: 2048 * MIB
    })
    expect(spec.constraints[1]).not.toHaveProperty('value')
  })

  it('fills what the wire leaves out with the defaults the agent always read', () => {
    expect(vmSpecFromWire({})).toEqual({
      name: '',
      resources: { vcpus: 0, memoryBytes: 0, diskBytes: 0 },
      boot: { image: '', kernel: '', initrd: '', cmdline: '', library: null },
      constraints: [],
      group: '',
      affinity: [],
      antiAffinity: [],
      softAffinity: [],
      softAntiAffinity: [],
      policy: null,
      host: '',
      accelerator: null,
      cpuModel: '',
      replicas: 0,
      rpoMs: 0,
      spreadBy: '',
      metadata: {},
      notMigratable: false,
      noBalance: false,
      restart: 'on-crash',
      nics: [],
      guest: null,
      maxMemoryBytes: 0,
      maxVcpus: 0
    })
    // An unset constraint op is eq, as placement always read it.
    expect(vmSpecFromWire({ constraints: [{ key: 'zone', value: 'a' }] }).constraints).toEqual([{ key: 'zone', op: 'eq', value: 'a' }])
  })

  it('takes uint64 sizes beyond 32 bits from the bytes', () => {
    const wire = pb.VmSpec.decode(pb.VmSpec.encode({ resources: { vcpus: 1, memoryBytes: 6 * 2 ** 32, diskBytes: 0 } }).finish())
    expect(vmSpecFromWire(wire).resources.memoryBytes).toBe(6 * 2 ** 32)
    expect(resourcesFromWire(undefined)).toEqual({ vcpus: 0, memoryBytes: 0, diskBytes: 0 })
  })

  it('round-trips through the wire and the stored bytes', () => {
    for (const wire of [full, { name: 'a', resources: { vcpus: 1, memoryBytes: 64 * MIB }, boot: { kernel: '/k' } }, {}]) {
      const spec = vmSpecFromWire(wire)
      expect(vmSpecFromWire(vmSpecToWire(spec))).toEqual(spec)
      expect(decodeVmSpec(encodeVmSpec(spec))).toEqual(spec)
    }
  })

  it('writes the defaults as proto3 would: left out, so a plain spec stays as short as before', () => {
    const plain = { name: 'a', resources: { vcpus: 1, memoryBytes: 64 * MIB, diskBytes: 0 }, boot: { kernel: '/k' } }
    expect(vmSpecToWire(vmSpecFromWire(plain))).toEqual(plain)
    expect(Buffer.from(encodeVmSpec(vmSpecFromWire(plain))).equals(Buffer.from(pb.VmSpec.encode(plain).finish()))).toBe(true)
  })

  it('parses at the edge: read, then checked, with the validation message naming the field', () => {
    expect(parseVmSpec({ name: 'ok', resources: { vcpus: 1, memoryBytes: 64 * MIB }, boot: { kernel: '/k' } }).name).toBe('ok')
    expect(() => parseVmSpec({ name: 'Bad_Name', resources: { vcpus: 1, memoryBytes: 64 * MIB }, boot: { kernel: '/k' } })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/VM name 'Bad_Name'/) }))
    expect(() => parseVmSpec({ name: 'ok', resources: { vcpus: 1, memoryBytes: 64 * MIB } })).toThrow(/a VM needs something to boot/)
  })
})
