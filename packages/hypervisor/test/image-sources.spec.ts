/** Where guest images may come from: never a host secret, by any spelling (issue 22, finding 3). */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ImageSources, QemuHypervisor, SimHypervisor, type ImageUse, type VmSpec } from '../src/index.js'

let dir: string
let data: string
let images: string
let key: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mv-imgsrc-'))
  data = join(dir, 'data')
  images = join(dir, 'images')
  key = join(dir, 'etc', 'cluster.key')
  for (const d of [join(data, 'images'), join(data, 'replicas', 'vm-a'), join(data, 'vms', 'vm-b'), images, join(dir, 'etc')]) await mkdir(d, { recursive: true })
  for (const f of [join(data, 'identity.key'), join(data, 'state.db'), join(data, 'monitor.token'), join(data, 'images', 'debian.qcow2'), join(data, 'replicas', 'vm-a', 'vda.raw'), join(data, 'vms', 'vm-b', 'vda.qcow2'), join(images, 'vmlinux'), key]) await writeFile(f, 'x')
  await symlink(join(data, 'identity.key'), join(images, 'innocent.img'))
  await symlink(data, join(images, 'data-link'))
  await symlink(key, join(images, 'key-link'))
})
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

describe('ImageSources', () => {
  const sources = (): ImageSources => new ImageSources({ imageDirs: [images], dataDir: data, secrets: [key] })

  it.each<[string, (d: string) => string, ImageUse]>([
    ['an image in an image dir', () => join(images, 'vmlinux'), 'kernel'],
    ['one not there yet (create says it is missing)', () => join(images, 'later.img'), 'base image'],
    ['one in the agent\'s image store', () => join(data, 'images', 'debian.qcow2'), 'base image'],
    ['a replica, imported at promotion', () => join(data, 'replicas', 'vm-a', 'vda.raw'), 'imported image']
  ])('allows %s', async (_what, path, use) => {
    await expect(sources().check(path(dir), use)).resolves.toBe(path(dir))
  })

  it.each<[string, () => string, ImageUse, RegExp]>([
    ['the host key', () => join(data, 'identity.key'), 'base image', /inside .*data, which holds this host's keys/],
    ['the state database', () => join(data, 'state.db'), 'kernel', /never a boot source/],
    ['the monitor token', () => join(data, 'monitor.token'), 'initrd', /never a boot source/],
    ['another VM\'s disk', () => join(data, 'vms', 'vm-b', 'vda.qcow2'), 'base image', /never a boot source/],
    ['the cluster key file, outside the data dir', () => key, 'base image', /cluster\.key, which holds/],
    ['a symlink in an image dir to the host key', () => join(images, 'innocent.img'), 'base image', /innocent\.img \(.*identity\.key\) is inside/],
    ['a path through a symlink to the data dir', () => join(images, 'data-link', 'state.db'), 'kernel', /never a boot source/],
    ['a symlink to the cluster key', () => join(images, 'key-link'), 'kernel', /never a boot source/],
    ['.. out of an image dir', () => join(images, '..', 'data', 'identity.key'), 'kernel', /never a boot source/],
    ['.. through a dir that does not exist', () => `${images}/nothing/../../etc/cluster.key`, 'kernel', /never a boot source/],
    ['a replica as a base image (only a promotion imports one)', () => join(data, 'replicas', 'vm-a', 'vda.raw'), 'base image', /never a boot source/],
    ['a file outside every image dir', () => '/etc/passwd', 'kernel', /outside the image dirs .*images.*--image-dir/],
    ['a relative path', () => 'images/vmlinux', 'kernel', /must be an absolute path/]
  ])('refuses %s', async (_what, path, use, message) => {
    await expect(sources().check(path(), use)).rejects.toMatchObject({ code: 'ERR_PATH_OUTSIDE_DATA_DIR', message: expect.stringMatching(message) })
  })

  it('still refuses the secrets when the operator lists the data dir, or a dir holding the key, as an image dir', async () => {
    const wide = new ImageSources({ imageDirs: [dir, data], dataDir: data, secrets: [key] })
    await expect(wide.check(join(data, 'identity.key'), 'base image')).rejects.toThrow(/never a boot source/)
    await expect(wide.check(key, 'kernel')).rejects.toThrow(/never a boot source/)
    await expect(wide.check(join(images, 'vmlinux'), 'kernel')).resolves.toBe(join(images, 'vmlinux'))
  })

  it('with imageDirs "any" (a driver that reads no file) refuses only the secrets', async () => {
    const any = new ImageSources({ imageDirs: 'any', dataDir: data, secrets: [key] })
    await expect(any.check('/sim/vmlinux', 'kernel')).resolves.toBe('/sim/vmlinux')
    await expect(any.check(join(images, 'innocent.img'), 'base image')).rejects.toThrow(/never a boot source/)
  })
})

describe.each([
  ['qemu', () => new QemuHypervisor({ dataDir: data, imageDirs: [images], secrets: [key], hostLimits: { cpus: 2, memoryMiB: 1024 } })],
  ['sim', () => new SimHypervisor({ hostLimits: { cpus: 2, memoryMiB: 1024 }, images: new ImageSources({ imageDirs: 'any', dataDir: data, secrets: [key] }) })]
] as const)('%s driver', (_driver, make) => {
  const diskFrom = (base: string): VmSpec => ({ id: 'vm-secret', vcpus: 1, memoryMiB: 64, boot: { kind: 'disk' }, disks: [{ name: 'vda', sizeMiB: 16, base }] })

  it.each([
    ['DATA_DIR/identity.key', () => join(data, 'identity.key')],
    ['a symlink to it', () => join(images, 'innocent.img')],
    ['the cluster key', () => key]
  ])('refuses %s as a disk at checkSpec and create, creating nothing', async (_what, path) => {
    const hv = make()
    await expect(hv.checkSpec(diskFrom(path()))).rejects.toThrow(/never a boot source/)
    await expect(hv.create(diskFrom(path()))).rejects.toThrow(/never a boot source/)
    expect(await hv.list()).toEqual([])
    await hv.close()
  })
})
