import { describe, expect, it } from 'vitest'
import { validateSpec, type NicSpec, type VmSpec } from '../src/index.js'

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

  const nic = (i: number): NicSpec => ({ mac: `02:00:00:00:00:0${i}`, tap: `mvtap${i}` })

  it.each<[string, NicSpec[]]>([
    ['no NICs', []],
    ['one NIC', [nic(0)]],
    ['four NICs', [nic(0), nic(1), nic(2), nic(3)]],
    ['a 15-character tap with . _ -', [{ mac: '52:54:00:12:34:56', tap: 'a.b_c-d01234567' }]]
  ])('accepts %s', (_why, nics) => {
    expect(() => { validateSpec({ ...ok, nics }, host) }).not.toThrow()
  })

  it.each<[string, unknown, string]>([
    ['five NICs', [nic(0), nic(1), nic(2), nic(3), nic(4)], 'nics: 5 NICs, at most 4'],
    ['upper-case MAC', [nic(0), { mac: '02:AA:00:00:00:01', tap: 't1' }], 'nics[1].mac: "02:AA:00:00:00:01" is not'],
    ['short MAC', [{ mac: '02:00:00:00:01', tap: 't0' }], 'nics[0].mac:'],
    ['dashed MAC', [{ mac: '02-00-00-00-00-01', tap: 't0' }], 'nics[0].mac:'],
    ['missing MAC', [{ tap: 't0' }], 'nics[0].mac: undefined'],
    ['multicast MAC', [{ mac: '01:00:5e:00:00:01', tap: 't0' }], 'nics[0].mac: 01:00:5e:00:00:01 is multicast'],
    ['broadcast MAC', [{ mac: 'ff:ff:ff:ff:ff:ff', tap: 't0' }], 'is multicast'],
    ['empty tap', [{ mac: '02:00:00:00:00:01', tap: '' }], 'nics[0].tap: "" is not an interface name'],
    ['16-character tap', [{ mac: '02:00:00:00:00:01', tap: 'a'.repeat(16) }], 'nics[0].tap:'],
    ['tap with a slash', [{ mac: '02:00:00:00:00:01', tap: 'a/b' }], 'nics[0].tap:'],
    ['tap with a space', [{ mac: '02:00:00:00:00:01', tap: 'a b' }], 'nics[0].tap:'],
    ['tap named ..', [{ mac: '02:00:00:00:00:01', tap: '..' }], 'nics[0].tap:'],
    ['duplicate MAC', [nic(0), { ...nic(1), mac: nic(0).mac }], 'nics[1].mac: 02:00:00:00:00:00 is used by another NIC'],
    ['duplicate tap', [nic(0), nic(1), { ...nic(2), tap: nic(1).tap }], 'nics[2].tap: mvtap1 is used by another NIC'],
    ['nics not an array', { mac: '02:00:00:00:00:01', tap: 't0' }, 'nics must be an array']
  ])('refuses %s, naming the field', (_why, nics, message) => {
    expect(() => { validateSpec({ ...ok, nics: nics as NicSpec[] }, host) }).toThrow(expect.objectContaining({ code: 'ERR_INVALID_SPEC', message: expect.stringContaining(message) }))
  })
})
