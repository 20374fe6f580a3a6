import { describe, expect, it } from 'vitest'
import { ControlError } from '@meshvirt/agent'
import { flagOfField, parseDuration, parseRpo, specFromFlags, withFlag } from '../src/commands/vm-args.js'
import type { CommandContext } from '../src/command.js'

const ctx = (values: CommandContext['values'], cwd?: string): CommandContext => ({ values, positionals: [], env: {}, out: () => {}, err: () => {}, ...(cwd !== undefined ? { cwd } : {}) })

describe('vm create flags', () => {
  it.each<[string, string]>([
    ['base.qcow2', '/home/op/images/base.qcow2'],
    ['./sub/../base.qcow2', '/home/op/images/base.qcow2'],
    ['../base.qcow2', '/home/op/base.qcow2'],
    ['/var/lib/images/debian.qcow2', '/var/lib/images/debian.qcow2']
  ])('resolves --image %s against the current dir → %s', (image, expected) => {
    expect(specFromFlags(ctx({ name: 'a', image }, '/home/op/images')).boot.image).toBe(expected)
  })

  it('resolves --kernel and --initrd too, and leaves --cmdline as typed', () => {
    const spec = specFromFlags(ctx({ name: 'a', kernel: '.cache/guest/vmlinux', initrd: 'initramfs.cpio', cmdline: 'console=ttyS0 root=./x' }, '/repo'))
    expect(spec.boot).toEqual({ kernel: '/repo/.cache/guest/vmlinux', initrd: '/repo/initramfs.cpio', cmdline: 'console=ttyS0 root=./x' })
  })

  it.each([
    ['debian-12', 'debian-12'],
    ['alpine-3.20:v1', 'alpine-3.20:v1']
  ])('takes --image %s, no file of that name here, as a library image', (image, ref) => {
    const boot = specFromFlags(ctx({ name: 'a', image }, '/nonexistent')).boot
    expect(boot).toEqual({ library: { ref } })
  })

  it('uses the process\'s current dir by default', () => {
    expect(specFromFlags(ctx({ name: 'a', image: 'x.qcow2' })).boot.image).toBe(`${process.cwd()}/x.qcow2`)
  })
})

describe('durations', () => {
  it.each([['500ms', 500], ['5s', 5000], ['2m', 120_000], ['1.5h', 5_400_000], ['3', 3000]])('%s → %d ms', (text, ms) => {
    expect(parseDuration(text, '--x')).toBe(ms)
  })

  it.each(['abc', '', '-1s', '5 days'])('refuses %j naming the flag', (text) => {
    expect(() => parseDuration(text, '--timeout')).toThrow(/--timeout: expected a duration/)
  })

  it('refuses --rpo 0s, which the wire would read as "unset" (the default taken silently)', () => {
    expect(() => parseRpo('0s')).toThrow(/--rpo: a replica cannot be 0 s old/)
    expect(() => specFromFlags(ctx({ name: 'a', image: 'x.qcow2', rpo: '0ms', replicas: '1' }))).toThrow(/--rpo/)
    expect(parseRpo('5s')).toBe(5000)
  })
})

describe('an agent\'s refusal of a spec field, said with its flag', () => {
  it.each<[string, string | undefined]>([
    ['name', '--name'],
    ['resources.vcpus', '--vcpus'],
    ['resources.memoryBytes', '--memory'],
    ['resources.diskBytes', '--disk'],
    ['maxVcpus', '--max-vcpus'],
    ['maxMemoryBytes', '--max-memory'],
    ['boot', '--image/--kernel'],
    ['boot.library.ref', '--image'],
    ['rpoMs', '--rpo'],
    ['nics[2].network', '--net'],
    ['guest.sshAuthorizedKeys', '--ssh-key'],
    ['guest.userData', '--user-data'],
    ['somethingElse', undefined]
  ])('%s → %s', (field, flag) => {
    expect(flagOfField(field)).toBe(flag)
  })

  it('prefixes the flag unless the message names it; other errors pass unchanged', () => {
    const said = (code: string, message: string, details: Record<string, string>): string => (withFlag(new ControlError(code, message, details)) as Error).message
    expect(said('INVALID_ARGUMENT', 'vcpus must be between 1 and 256, got 300', { field: 'resources.vcpus' })).toBe('--vcpus: vcpus must be between 1 and 256, got 300')
    expect(said('INVALID_ARGUMENT', '--max-vcpus must be from the vCPUs (2) to 64, got 1', { field: 'maxVcpus' })).toBe('--max-vcpus must be from the vCPUs (2) to 64, got 1')
    expect(said('INVALID_ARGUMENT', 'a VM needs something to boot: --image NAME', { field: 'boot' })).toBe('a VM needs something to boot: --image NAME')
    expect(said('INVALID_ARGUMENT', 'no field here', {})).toBe('no field here')
    expect(said('NO_CAPACITY', 'no host fits', { field: 'resources.vcpus' })).toBe('no host fits')
  })
})
