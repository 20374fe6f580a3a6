/** A disk created from an image (a replica at failover) holds the image's bytes and stands alone. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { QemuHypervisor, type VmSpec } from '../src/index.js'

const MIB = 2 ** 20
let dir: string
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'mv-import-')) })
afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

function spec (disk: VmSpec['disks']): VmSpec {
  return { id: 'vm', vcpus: 1, memoryMiB: 64, boot: { kind: 'kernel', kernel: join(dir, 'vmlinux') }, disks: disk }
}

describe('disk import', () => {
  it('copies a raw image into a standalone qcow2 disk, grown to the disk size', async () => {
    await writeFile(join(dir, 'vmlinux'), 'kernel')
    const image = Buffer.alloc(2 * MIB)
    image.write('meshvirt replica block 0', 0)
    image.write('the last block', 2 * MIB - 4096)
    await writeFile(join(dir, 'replica.raw'), image)
    const hv = new QemuHypervisor({ dataDir: join(dir, 'data'), imageDirs: [dir] })
    const info = await hv.create(spec([{ name: 'vda', sizeMiB: 4, importFrom: join(dir, 'replica.raw') }]))
    const disk = info.paths.disks.vda as string
    const meta = JSON.parse((await execa('qemu-img', ['info', '--output=json', disk])).stdout) as { format: string, 'virtual-size': number, 'backing-filename'?: string }
    expect(meta.format).toBe('qcow2')
    expect(meta['virtual-size']).toBe(4 * MIB)
    expect(meta['backing-filename']).toBeUndefined()
    await execa('qemu-img', ['convert', '-O', 'raw', disk, join(dir, 'back.raw')])
    const back = await readFile(join(dir, 'back.raw'))
    expect(back.subarray(0, 2 * MIB).equals(image)).toBe(true)
    expect(back.subarray(2 * MIB).every((b) => b === 0)).toBe(true)
    // The record keeps the disk, not where its first contents came from.
    expect((await hv.inspect('vm')).spec.disks?.[0]).toEqual({ name: 'vda', sizeMiB: 4 })
    await hv.close()
  })

  it('refuses an image outside the image dirs, and a missing one', async () => {
    await writeFile(join(dir, 'vmlinux'), 'kernel')
    const hv = new QemuHypervisor({ dataDir: join(dir, 'data'), imageDirs: [dir] })
    await expect(hv.create(spec([{ name: 'vda', sizeMiB: 4, importFrom: '/etc/passwd' }]))).rejects.toMatchObject({ code: 'ERR_PATH_OUTSIDE_DATA_DIR' })
    await expect(hv.create(spec([{ name: 'vda', sizeMiB: 4, importFrom: join(dir, 'nothing.raw') }]))).rejects.toMatchObject({ code: 'ERR_IMAGE_MISSING' })
    await expect(hv.inspect('vm')).rejects.toMatchObject({ code: 'ERR_VM_NOT_FOUND' })
    await hv.close()
  })
})
