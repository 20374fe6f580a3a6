import { describe, expect, it } from 'vitest'
import { specFromFlags } from '../src/commands/vm-args.js'
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

  it('uses the process\'s current dir by default', () => {
    expect(specFromFlags(ctx({ name: 'a', image: 'x.qcow2' })).boot.image).toBe(`${process.cwd()}/x.qcow2`)
  })
})
