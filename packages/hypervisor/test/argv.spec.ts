import { describe, expect, it } from 'vitest'
import { buildQemuArgv, escapeOption, vmPaths, type VmSpec } from '../src/index.js'

const kernelVm: VmSpec = {
  id: 'web-1', vcpus: 2, memoryMiB: 256,
  boot: { kind: 'kernel', kernel: '/img/vmlinux', initrd: '/img/initramfs.cpio', cmdline: 'console=ttyS0 quiet' },
  disks: [{ name: 'vda', sizeMiB: 64 }, { name: 'vdb', sizeMiB: 32, base: '/img/base.qcow2' }]
}
const nicVm: VmSpec = {
  ...kernelVm, id: 'net-1',
  nics: [{ mac: '02:aa:bb:cc:dd:01', tap: 'mvt1a2b3c4dn0' }, { mac: '02:aa:bb:cc:dd:02', tap: 'mvt1a2b3c4dn1' }]
}
const diskVm: VmSpec = { id: 'db-1', vcpus: 1, memoryMiB: 512, boot: { kind: 'disk' }, disks: [{ name: 'vda', sizeMiB: 1024 }], cpuModel: 'Skylake-Server' }

describe('buildQemuArgv', () => {
  it('builds the kernel-boot command line (snapshot)', () => {
    expect(buildQemuArgv({ spec: kernelVm, paths: vmPaths('/data', kernelVm), accel: 'tcg' })).toMatchSnapshot()
  })

  it('builds the disk-boot command line under KVM (snapshot)', () => {
    expect(buildQemuArgv({ spec: diskVm, paths: vmPaths('/data', diskVm), accel: 'kvm' })).toMatchSnapshot()
  })

  it('pins the machine type, never the `pc` alias', () => {
    const argv = buildQemuArgv({ spec: kernelVm, paths: vmPaths('/data', kernelVm), accel: 'tcg' })
    expect(argv[argv.indexOf('-machine') + 1]).toBe('pc-i440fx-7.2,accel=tcg')
  })

  it('is deterministic: two hosts build the same machine (device ids and PCI slots)', () => {
    const a = buildQemuArgv({ spec: kernelVm, paths: vmPaths('/data', kernelVm), accel: 'tcg' })
    const b = buildQemuArgv({ spec: structuredClone(kernelVm), paths: vmPaths('/data', kernelVm), accel: 'tcg' })
    expect(a).toEqual(b)
    expect(a).toContain('virtio-blk-pci,id=vda,drive=disk-vda,bus=pci.0,addr=0x4')
    expect(a).toContain('virtio-blk-pci,id=vdb,drive=disk-vdb,bus=pci.0,addr=0x5')
  })

  it('builds a two-NIC machine (snapshot)', () => {
    expect(buildQemuArgv({ spec: nicVm, paths: vmPaths('/data', nicVm), accel: 'tcg' })).toMatchSnapshot()
  })

  it.each([
    {
      nics: 1,
      devices: ['virtio-net-pci,id=nic0,netdev=net0,mac=02:aa:bb:cc:dd:01,bus=pci.0,addr=0x2.0x0']
    },
    {
      nics: 2,
      devices: [
        'virtio-net-pci,id=nic0,netdev=net0,mac=02:aa:bb:cc:dd:01,bus=pci.0,addr=0x2.0x0,multifunction=on',
        'virtio-net-pci,id=nic1,netdev=net1,mac=02:aa:bb:cc:dd:02,bus=pci.0,addr=0x2.0x1'
      ]
    },
    { nics: 0, devices: [] }
  ])('puts $nics NIC(s) on PCI slot 2, one function each, multifunction only with siblings', ({ nics, devices }) => {
    const spec = { ...nicVm, nics: nicVm.nics?.slice(0, nics) }
    const argv = buildQemuArgv({ spec, paths: vmPaths('/data', spec), accel: 'tcg' })
    expect(argv.filter((a) => a.startsWith('virtio-net-pci'))).toEqual(devices)
    expect(argv.filter((a) => a.startsWith('tap,'))).toEqual(devices.map((_, i) => `tap,id=net${i},ifname=mvt1a2b3c4dn${i},script=no,downscript=no,vhost=off`))
    // The disks keep their slots whatever the NICs.
    expect(argv).toContain('virtio-blk-pci,id=vda,drive=disk-vda,bus=pci.0,addr=0x4')
  })

  it('builds the same NICs on two hosts, and the same incoming machine', () => {
    const a = buildQemuArgv({ spec: nicVm, paths: vmPaths('/data', nicVm), accel: 'tcg' })
    const b = buildQemuArgv({ spec: structuredClone(nicVm), paths: vmPaths('/data', nicVm), accel: 'tcg', incoming: 'defer' })
    expect(b.slice(0, a.length - 1)).toEqual(a.slice(0, -1))
  })

  it.each([
    { incoming: undefined, daemonize: undefined, has: ['-daemonize'], lacks: ['-incoming', '-S'] },
    { incoming: 'defer' as const, daemonize: undefined, has: ['-incoming', 'defer', '-S', '-daemonize'], lacks: [] },
    { incoming: undefined, daemonize: false, has: [], lacks: ['-daemonize'] }
  ])('incoming=$incoming daemonize=$daemonize', ({ incoming, daemonize, has, lacks }) => {
    const argv = buildQemuArgv({ spec: kernelVm, paths: vmPaths('/data', kernelVm), accel: 'tcg', incoming, daemonize })
    for (const a of has) expect(argv).toContain(a)
    for (const a of lacks) expect(argv).not.toContain(a)
  })

  it('defaults to a migratable CPU model', () => {
    const argv = buildQemuArgv({ spec: kernelVm, paths: vmPaths('/data', kernelVm), accel: 'kvm' })
    expect(argv[argv.indexOf('-cpu') + 1]).toBe('qemu64')
  })

  it.each([1, 64, 128, 256, 4096, 65536])('gives %i MiB TCG guests one page more, off the 256 KiB grid where QEMU 7.2 loses TCG writes in migrations; KVM guests the spec exactly', (memoryMiB) => {
    const ram = (accel: 'tcg' | 'kvm'): string => {
      const argv = buildQemuArgv({ spec: { ...kernelVm, memoryMiB }, paths: vmPaths('/data', kernelVm), accel })
      return (argv[argv.indexOf('-m') + 1] as string).split(',')[0] as string
    }
    expect(ram('tcg')).toBe(`${memoryMiB * 1024 + 4}k`)
    expect((memoryMiB * 1024 + 4) % 256).not.toBe(0)
    expect(ram('kvm')).toBe(String(memoryMiB))
  })

  it('launches a guest with room to grow with slots and maxmem, and the DIMMs it got while it ran, in order', () => {
    const argv = buildQemuArgv({ spec: { ...kernelVm, memoryMiB: 512, memoryDimmsMiB: [128, 256], maxMemoryMiB: 1024 }, paths: vmPaths('/data', kernelVm), accel: 'tcg' })
    // Boot RAM 128 MiB (+ the TCG page).
    expect(argv[argv.indexOf('-m') + 1]).toBe(`${128 * 1024 + 4}k,slots=16,maxmem=1024M`)
    const dimms = argv.flatMap((a, i) => ['-object', '-device'].includes(argv[i - 1] ?? '') && /dimm/.test(a) ? [a] : [])
    expect(dimms).toEqual([
      'memory-backend-ram,id=dimm0-ram,size=128M', 'pc-dimm,id=dimm0,memdev=dimm0-ram',
      'memory-backend-ram,id=dimm1-ram,size=256M', 'pc-dimm,id=dimm1,memdev=dimm1-ram'
    ])
  })

  it('launches a guest without room for vCPUs with plain -smp; with room, a socket per vCPU and a device per vCPU added online', () => {
    const plain = buildQemuArgv({ spec: kernelVm, paths: vmPaths('/data', kernelVm), accel: 'tcg' })
    expect(plain[plain.indexOf('-smp') + 1]).toBe('2')
    const argv = buildQemuArgv({ spec: { ...diskVm, vcpus: 3, bootVcpus: 1, maxVcpus: 4 }, paths: vmPaths('/data', diskVm), accel: 'tcg' })
    expect(argv[argv.indexOf('-smp') + 1]).toBe('1,sockets=4,cores=1,threads=1,maxcpus=4')
    expect(argv.filter((a, i) => argv[i - 1] === '-device' && /x86_64-cpu/.test(a))).toEqual([
      'Skylake-Server-x86_64-cpu,id=cpu1,socket-id=1,core-id=0,thread-id=0',
      'Skylake-Server-x86_64-cpu,id=cpu2,socket-id=2,core-id=0,thread-id=0'
    ])
  })

  it.each([['/a,b', '/a,,b'], ['plain', 'plain'], [',,', ',,,,']])('escapes commas in option values: %s', (input, out) => {
    expect(escapeOption(input)).toBe(out)
  })
})
