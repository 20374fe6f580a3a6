import { describe, expect, it } from 'vitest'
import { validateSpec, type VmSpec } from '../src/index.js'

const host = { cpus: 4, memoryMiB: 8192 }
const ok: VmSpec = { id: 'vm-1', vcpus: 1, memoryMiB: 128, boot: { kind: 'kernel', kernel: '/k' }, disks: [{ name: 'vda', sizeMiB: 8 }] }

describe('validateSpec', () => {
  it('accepts a sane spec', () => { expect(() => { validateSpec(ok, host) }).not.toThrow() })

  it.each<[string, Partial<VmSpec>, string]>([
    ['id with a slash', { id: 'a/b' }, 'ERR_INVALID_SPEC'],
    ['id with ..', { id: 'a..b' }, 'ERR_INVALID_SPEC'],
    ['upper-case id', { id: 'VM' }, 'ERR_INVALID_SPEC'],
    ['empty id', { id: '' }, 'ERR_INVALID_SPEC'],
    ['zero vcpus', { vcpus: 0 }, 'ERR_INVALID_SPEC'],
    ['fractional memory', { memoryMiB: 127.5 }, 'ERR_INVALID_SPEC'],
    ['tiny memory', { memoryMiB: 8 }, 'ERR_INVALID_SPEC'],
    ['more vcpus than the host', { vcpus: 5 }, 'ERR_RESOURCES_TOO_LARGE'],
    ['more memory than the host', { memoryMiB: 8193 }, 'ERR_RESOURCES_TOO_LARGE'],
    ['disk boot without disks', { boot: { kind: 'disk' }, disks: [] }, 'ERR_INVALID_SPEC'],
    ['bad disk name', { disks: [{ name: '../x', sizeMiB: 1 }] }, 'ERR_INVALID_SPEC'],
    ['duplicate disk', { disks: [{ name: 'vda', sizeMiB: 1 }, { name: 'vda', sizeMiB: 1 }] }, 'ERR_INVALID_SPEC'],
    ['zero-size disk', { disks: [{ name: 'vda', sizeMiB: 0 }] }, 'ERR_INVALID_SPEC'],
    ['kernel boot without kernel', { boot: { kind: 'kernel', kernel: '' } }, 'ERR_INVALID_SPEC']
  ])('refuses %s', (_why, patch, code) => {
    expect(() => { validateSpec({ ...ok, ...patch }, host) }).toThrow(expect.objectContaining({ code }))
  })
})
