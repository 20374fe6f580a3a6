import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { QemuHypervisor } from '../src/index.js'
import { ensureGuest, killQemusUnder, type TestGuest } from '@meshvirt/testkit'
import { hypervisorTests } from './hypervisor-compliance.js'

let guest: TestGuest
beforeAll(async () => { guest = await ensureGuest() }, 180_000)

hypervisorTests('QemuHypervisor (TCG)', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'mv-hv-'))
  const hypervisor = new QemuHypervisor({ dataDir, accel: 'tcg', imageDirs: [guest.dir], acpiTimeoutMs: 5000, termTimeoutMs: 3000 })
  return {
    hypervisor,
    spec: (id) => ({ id, vcpus: 1, memoryMiB: 128, boot: { kind: 'kernel', kernel: guest.kernel, initrd: guest.initrd, cmdline: guest.cmdline }, disks: [{ name: 'vda', sizeMiB: 16 }] }),
    cleanup: async () => {
      await hypervisor.close()
      await killQemusUnder(dataDir)
      await rm(dataDir, { recursive: true, force: true })
    },
    // -U: a running QEMU holds the image's write lock.
    diskBytes: async (path) => Number((JSON.parse((await execa('qemu-img', ['info', '-U', '--output=json', path])).stdout) as { 'virtual-size': number })['virtual-size'])
  }
})

describe('QemuHypervisor machines beyond the test guest', () => {
  let dataDir: string | undefined
  afterEach(async () => {
    if (dataDir === undefined) return
    await killQemusUnder(dataDir)
    await rm(dataDir, { recursive: true, force: true })
    dataDir = undefined
  })

  it('starts a firmware-booted VM from a qcow2 overlay on a base image, with the pinned machine', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mv-hv-'))
    const images = join(dataDir, 'images')
    await mkdir(images)
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', join(images, 'base.qcow2'), '32M'])
    const hv = new QemuHypervisor({ dataDir, accel: 'tcg', imageDirs: [images] })
    await hv.create({ id: 'fw', vcpus: 1, memoryMiB: 64, boot: { kind: 'disk' }, disks: [{ name: 'vda', sizeMiB: 32, base: join(images, 'base.qcow2') }, { name: 'vdb', sizeMiB: 8 }] })
    await hv.start('fw')
    const qmp = await hv.monitor('fw')
    const status = await qmp.execute<{ status: string }>('query-status')
    expect(status.status).toBe('running')
    expect(await qmp.execute<string>('qom-get', { path: '/machine', property: 'type' })).toBe('pc-i440fx-7.2-machine')
    const blocks = await qmp.execute<Array<{ qdev: string, inserted?: { backing_file?: string } }>>('query-block')
    expect(blocks.map((b) => b.qdev).sort()).toEqual(['/machine/peripheral/vda/virtio-backend', '/machine/peripheral/vdb/virtio-backend'])
    expect(blocks.find((b) => b.qdev.includes('vda'))?.inserted?.backing_file).toBe(join(images, 'base.qcow2'))
    await hv.kill('fw')
    await hv.close()
  })
})
