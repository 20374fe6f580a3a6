/** Bad input and broken hosts give typed errors, never a crash. Fake binaries stand in for broken QEMUs. */
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { QemuHypervisor, type VmSpec } from '../src/index.js'
import { killQemusUnder } from '@meshvirt/testkit'

let dir: string
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'mv-err-')) })
afterEach(async () => {
  await killQemusUnder(join(dir, 'data'))
  await rm(dir, { recursive: true, force: true })
})

async function fakeBinary (name: string, script: string): Promise<string> {
  const path = join(dir, name)
  await writeFile(path, `#!/bin/sh\n${script}\n`)
  await chmod(path, 0o755)
  return path
}

async function withKernel (): Promise<VmSpec> {
  await writeFile(join(dir, 'vmlinux'), 'not really a kernel')
  return { id: 'vm', vcpus: 1, memoryMiB: 64, boot: { kind: 'kernel', kernel: join(dir, 'vmlinux') } }
}

describe('QemuHypervisor errors', () => {
  it('QEMU missing: fingerprint and start say so', async () => {
    const hv = new QemuHypervisor({ dataDir: join(dir, 'data'), imageDirs: [dir], qemuBinary: join(dir, 'no-such-qemu') })
    await expect(hv.fingerprint()).rejects.toMatchObject({ code: 'ERR_QEMU_MISSING' })
    await hv.create(await withKernel())
    await expect(hv.start('vm')).rejects.toMatchObject({ code: 'ERR_QEMU_MISSING' })
    expect((await hv.inspect('vm')).state).toBe('created')
  })

  it('qemu-img missing when creating a disk', async () => {
    const hv = new QemuHypervisor({ dataDir: join(dir, 'data'), imageDirs: [dir], qemuImgBinary: join(dir, 'no-such-qemu-img') })
    await expect(hv.create({ ...await withKernel(), disks: [{ name: 'vda', sizeMiB: 1 }] })).rejects.toMatchObject({ code: 'ERR_QEMU_MISSING' })
    await expect(hv.inspect('vm')).rejects.toMatchObject({ code: 'ERR_VM_NOT_FOUND' })
  })

  it('KVM unusable: QEMU refusing -accel kvm becomes ERR_KVM_UNUSABLE', async () => {
    const qemu = await fakeBinary('qemu', 'echo "Could not access KVM kernel module: Permission denied" >&2; echo "qemu-system-x86_64: failed to initialize kvm: Permission denied" >&2; exit 1')
    // accel kvm: refused either by our /dev/kvm access check or, as here, by QEMU itself.
    const hv = new QemuHypervisor({ dataDir: join(dir, 'data'), imageDirs: [dir], qemuBinary: qemu, accel: 'kvm' })
    await hv.create(await withKernel())
    await expect(hv.start('vm')).rejects.toMatchObject({ code: 'ERR_KVM_UNUSABLE' })
  })

  it('disk full: qemu-img running out of space becomes ERR_DISK_FULL and leaves nothing behind', async () => {
    const qemuImg = await fakeBinary('qemu-img', 'echo "qemu-img: /x/vda.qcow2: Could not write qcow2 header: No space left on device" >&2; exit 1')
    const hv = new QemuHypervisor({ dataDir: join(dir, 'data'), imageDirs: [dir], qemuImgBinary: qemuImg })
    await expect(hv.create({ ...await withKernel(), disks: [{ name: 'vda', sizeMiB: 1 }] })).rejects.toMatchObject({ code: 'ERR_DISK_FULL' })
    expect(await hv.list()).toEqual([])
  })

  it('image missing: a kernel or base image that does not exist', async () => {
    const hv = new QemuHypervisor({ dataDir: join(dir, 'data'), imageDirs: [dir] })
    const spec = { id: 'vm', vcpus: 1, memoryMiB: 64, boot: { kind: 'kernel' as const, kernel: join(dir, 'absent') } }
    await expect(hv.create(spec)).rejects.toMatchObject({ code: 'ERR_IMAGE_MISSING' })
    await expect(hv.create({ ...await withKernel(), disks: [{ name: 'vda', sizeMiB: 1, base: join(dir, 'absent.qcow2') }] })).rejects.toMatchObject({ code: 'ERR_IMAGE_MISSING' })
  })

  it('what QEMU says lands in the VM\'s qemu.log and in the error (a daemonized QEMU has no stderr); the previous run\'s log is kept', async () => {
    const hv = new QemuHypervisor({ dataDir: join(dir, 'data'), imageDirs: [dir] })
    const vm = await hv.create({ ...await withKernel(), disks: [{ name: 'vda', sizeMiB: 1 }] })
    await rm(vm.paths.disks.vda as string)
    await expect(hv.start('vm')).rejects.toMatchObject({ code: 'ERR_IMAGE_MISSING', message: expect.stringMatching(/Could not open '.*vda\.qcow2': No such file or directory/) })
    expect(await readFile(vm.paths.qemuLog, 'utf8')).toMatch(/Could not open '.*vda\.qcow2'/)
    await expect(hv.start('vm')).rejects.toMatchObject({ code: 'ERR_IMAGE_MISSING' })
    expect(await readFile(`${vm.paths.qemuLog}.1`, 'utf8')).toMatch(/Could not open '.*vda\.qcow2'/)
    expect((await hv.inspect('vm')).state).toBe('created')
  })

  it('paths outside the data and image dirs are refused', async () => {
    const hv = new QemuHypervisor({ dataDir: join(dir, 'data'), imageDirs: [join(dir, 'images')] })
    await expect(hv.create({ id: 'vm', vcpus: 1, memoryMiB: 64, boot: { kind: 'kernel', kernel: '/etc/passwd' } })).rejects.toMatchObject({ code: 'ERR_PATH_OUTSIDE_DATA_DIR' })
    await expect(hv.create({ ...await withKernel(), disks: [{ name: 'vda', sizeMiB: 1, base: '/etc/hostname' }] })).rejects.toMatchObject({ code: 'ERR_PATH_OUTSIDE_DATA_DIR' })
  })

  it('resources above the host are refused', async () => {
    const hv = new QemuHypervisor({ dataDir: join(dir, 'data'), imageDirs: [dir], hostLimits: { cpus: 2, memoryMiB: 1024 } })
    await expect(hv.create({ ...await withKernel(), vcpus: 3 })).rejects.toMatchObject({ code: 'ERR_RESOURCES_TOO_LARGE', name: 'ResourcesTooLargeError' })
    await expect(hv.create({ ...await withKernel(), memoryMiB: 2048 })).rejects.toMatchObject({ code: 'ERR_RESOURCES_TOO_LARGE' })
  })

  it('a corrupt VM record is reported by inspect and does not hide the other VMs', async () => {
    const hv = new QemuHypervisor({ dataDir: join(dir, 'data'), imageDirs: [dir] })
    await hv.create(await withKernel())
    const other = await hv.create({ ...await withKernel(), id: 'other' })
    await writeFile(join(other.paths.dir, 'vm.json'), '{ half a rec')
    await expect(hv.inspect('other')).rejects.toMatchObject({ code: 'ERR_CORRUPT_RECORD' })
    expect((await hv.list()).map((v) => v.id)).toEqual(['vm'])
  })

  it('a base image becomes the backing file of a thin qcow2 overlay', async () => {
    const { execa } = await import('execa')
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'base.qcow2'), '8M'])
    const hv = new QemuHypervisor({ dataDir: join(dir, 'data'), imageDirs: [dir] })
    const vm = await hv.create({ ...await withKernel(), disks: [{ name: 'vda', sizeMiB: 16, base: join(dir, 'base.qcow2') }] })
    const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', vm.paths.disks.vda as string])).stdout) as Record<string, unknown>
    expect(info).toMatchObject({ format: 'qcow2', 'backing-filename': join(dir, 'base.qcow2'), 'virtual-size': 16 * 1024 * 1024 })
  })

  it('an overlay smaller than its base is refused (the guest would find its file system cut short); as large is fine', async () => {
    const { execa } = await import('execa')
    // 2049 MiB virtual, a few KiB on disk: the refusal rounds the base up to whole MiB.
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'big.qcow2'), `${2049 * 1024 * 1024 - 512}`])
    const hv = new QemuHypervisor({ dataDir: join(dir, 'data'), imageDirs: [dir] })
    await expect(hv.create({ ...await withKernel(), disks: [{ name: 'vda', sizeMiB: 2048, base: join(dir, 'big.qcow2') }] }))
      .rejects.toMatchObject({ code: 'ERR_INVALID_SPEC', message: expect.stringContaining('at least 2049 MiB (--disk 2049M)') })
    await expect(hv.inspect('vm')).rejects.toMatchObject({ code: 'ERR_VM_NOT_FOUND' })
    const vm = await hv.create({ ...await withKernel(), disks: [{ name: 'vda', sizeMiB: 2049, base: join(dir, 'big.qcow2') }] })
    const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', vm.paths.disks.vda as string])).stdout) as Record<string, unknown>
    expect(info).toMatchObject({ 'virtual-size': 2049 * 1024 * 1024 })
  })
})
