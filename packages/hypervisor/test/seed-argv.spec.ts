import { describe, expect, it } from 'vitest'
import { buildQemuArgv, vmPaths, type VmSpec } from '../src/index.js'

const seeded: VmSpec = {
  id: 'web-1', vcpus: 1, memoryMiB: 128,
  boot: { kind: 'kernel', kernel: '/img/vmlinux' },
  seed: { files: [{ name: 'meta-data', content: 'instance-id: "web-1"\n' }] }
}

describe('buildQemuArgv: the cloud-init seed CD-ROM', () => {
  it('attaches seed.iso read-only on the IDE secondary master, id seed', () => {
    const argv = buildQemuArgv({ spec: seeded, paths: vmPaths('/data', seeded), accel: 'tcg' })
    const blockdev = JSON.parse(argv.find((a) => a.includes('"node-name":"seed"')) ?? '{}') as Record<string, unknown>
    expect(blockdev).toEqual({ driver: 'raw', 'node-name': 'seed', 'read-only': true, file: { driver: 'file', filename: '/data/vms/web-1/seed.iso', 'read-only': true } })
    expect(argv).toContain('ide-cd,id=seed,drive=seed,bus=ide.1,unit=0')
  })

  it('gives an incoming migration the same devices as a start', () => {
    const paths = vmPaths('/data', seeded)
    const start = buildQemuArgv({ spec: seeded, paths, accel: 'tcg' })
    const incoming = buildQemuArgv({ spec: seeded, paths, accel: 'tcg', incoming: 'defer' })
    expect(incoming.slice(0, start.length - 1)).toEqual(start.slice(0, -1))
    expect(incoming.filter((a) => a.startsWith('ide-cd'))).toEqual(['ide-cd,id=seed,drive=seed,bus=ide.1,unit=0'])
  })

  it('adds no CD-ROM to a VM without a seed', () => {
    const { seed: _, ...bare } = seeded
    const argv = buildQemuArgv({ spec: bare, paths: vmPaths('/data', bare), accel: 'tcg' })
    expect(argv.some((a) => a.includes('ide-cd') || a.includes('seed.iso'))).toBe(false)
  })
})
