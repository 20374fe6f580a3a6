/** checkSpec: what create would refuse, said before anything is laid down (the agent asks at Reserve). */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { QemuHypervisor, SimHypervisor, type Hypervisor, type VmSpec } from '../src/index.js'

let dir: string
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'mv-check-')) })
afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

const kernelSpec = (kernel: string, over: Partial<VmSpec> = {}): VmSpec => ({ id: 'vm-check', vcpus: 1, memoryMiB: 128, boot: { kind: 'kernel', kernel }, ...over })

describe.each([
  ['qemu', (): Hypervisor => new QemuHypervisor({ dataDir: join(dir, 'data'), imageDirs: [join(dir, 'images')], hostLimits: { cpus: 2, memoryMiB: 1024 } })],
  ['sim', (): Hypervisor => new SimHypervisor({ hostLimits: { cpus: 2, memoryMiB: 1024 } })]
] as const)('%s checkSpec', (_driver, make) => {
  it.each<[string, Partial<VmSpec>, RegExp]>([
    ['more vCPUs than the host', { vcpus: 3 }, /3 vCPUs exceed this host's 2 CPUs/],
    ['more memory than the host', { memoryMiB: 2048 }, /2048 MiB of memory exceed this host's 1024 MiB/],
    ['a bad disk name', { disks: [{ name: 'Vda', sizeMiB: 1 }] }, /disk name/]
  ])('refuses %s, with the error create throws', async (_what, over, message) => {
    const hv = make()
    const spec = kernelSpec(join(dir, 'images', 'vmlinux'), over)
    await expect(hv.checkSpec(spec)).rejects.toThrow(message)
    await expect(hv.create(spec)).rejects.toThrow(message)
    await hv.close()
  })

  it('accepts what create accepts, and lays nothing down', async () => {
    const hv = make()
    await expect(hv.checkSpec(kernelSpec(join(dir, 'images', 'vmlinux')))).resolves.toBeUndefined()
    expect(await hv.list()).toEqual([])
    await hv.close()
  })
})

describe('qemu checkSpec: boot files', () => {
  it('refuses a kernel or base image outside the image dirs, before creating anything', async () => {
    await writeFile(join(dir, 'vmlinux'), 'kernel')
    const hv = new QemuHypervisor({ dataDir: join(dir, 'data'), imageDirs: [join(dir, 'images')], hostLimits: { cpus: 2, memoryMiB: 1024 } })
    await expect(hv.checkSpec(kernelSpec(join(dir, 'vmlinux')))).rejects.toMatchObject({ code: 'ERR_PATH_OUTSIDE_DATA_DIR' })
    const diskBoot: VmSpec = { id: 'vm-check', vcpus: 1, memoryMiB: 128, boot: { kind: 'disk' }, disks: [{ name: 'vda', sizeMiB: 16, base: '/etc/passwd' }] }
    await expect(hv.checkSpec(diskBoot)).rejects.toThrow(/outside the image dirs/)
    expect(await readdir(dir)).toEqual(['vmlinux'])
    await hv.close()
  })
})
