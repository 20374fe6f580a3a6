import { DEFAULT_CPU_MODEL, MACHINE_TYPE } from '../constants.js'
import type { Accelerator, VmPaths, VmSpec } from '../types.js'
import { cpuArgv } from '../cpu-layout.js'
import { memoryArgv } from './guest-ram.js'
import { SEED_ISO } from './seed-iso.js'

export interface QemuLaunch {
  spec: VmSpec
  paths: VmPaths
  accel: Accelerator
  /**
   * Migration destination: `-incoming defer -S`, the stream is attached later over QMP
   * (`migrate-incoming`). Left out for a normal boot.
   */
  incoming?: 'defer'
  /** The vCPUs stay stopped (`-S`): a cold migration's source (types.ts, StartOptions). */
  paused?: boolean
  /** Daemonize (the driver's mode). Tests of the argv may turn it off. */
  daemonize?: boolean
}

/** First PCI slot for disks: 0 host bridge, 1 PIIX3, 2 the NICs (one function each), 3 reserved. */
const FIRST_DISK_SLOT = 4
const NIC_SLOT = 2

/**
 * The QEMU command line for a VM: a pure function of the spec and its paths, so that two hosts
 * build byte-identical machines (a migration needs the same machine type, `-m`, device ids and
 * PCI addresses on both sides).
 */
export function buildQemuArgv (launch: QemuLaunch): string[] {
  const { spec, paths, accel } = launch
  const argv = [
    '-name', `guest=${spec.id},debug-threads=on`,
    // Never the `pc` alias: it changes with the QEMU version and breaks migration.
    '-machine', `${MACHINE_TYPE},accel=${accel}`,
    '-cpu', spec.cpuModel ?? DEFAULT_CPU_MODEL,
    ...cpuArgv(spec),
    // Under TCG one page more than the spec: keeps migrations clear of a QEMU 7.2 dirty-tracking bug
    // (guest-ram.ts); room to grow while it runs, and the DIMMs added so far.
    ...memoryArgv(spec, accel),
    '-nodefaults', '-no-user-config',
    '-display', 'none', '-vga', 'none',
    // The serial port is a socket (`meshvirt vm console` types into it; wait=off: the guest never
    // waits for a client, and what it prints with none attached is dropped from the socket) that
    // also logs everything the guest prints; logappend=on: the log keeps every boot, so
    // `vm console --follow` can read it across restarts, and readers of the log see no difference.
    '-chardev', `socket,id=serial0,path=${escapeOption(paths.serialSocket)},server=on,wait=off,logfile=${escapeOption(paths.serialLog)},logappend=on`,
    '-serial', 'chardev:serial0',
    // wait=off: QEMU must not block on a monitor client; the driver connects when it wants.
    '-chardev', `socket,id=qmp,path=${escapeOption(paths.qmpSocket)},server=on,wait=off`,
    '-mon', 'chardev=qmp,mode=control',
    '-pidfile', paths.pidFile,
    // Once daemonized QEMU points stderr at /dev/null; with -D its error messages go to this file.
    '-D', paths.qemuLog
  ]
  if (spec.boot.kind === 'kernel') {
    argv.push('-kernel', spec.boot.kernel)
    if (spec.boot.initrd !== undefined) argv.push('-initrd', spec.boot.initrd)
    if (spec.boot.cmdline !== undefined) argv.push('-append', spec.boot.cmdline)
  }
  ;(spec.disks ?? []).forEach((disk, i) => {
    const file = paths.disks[disk.name] ?? `${paths.dir}/${disk.name}.qcow2`
    // -blockdev with node names: later mirror/backup jobs address the disk as `disk-<name>`.
    argv.push('-blockdev', JSON.stringify({
      driver: 'qcow2',
      'node-name': `disk-${disk.name}`,
      file: { driver: 'file', filename: file }
    }))
    const device = ['virtio-blk-pci', `id=${disk.name}`, `drive=disk-${disk.name}`, 'bus=pci.0', `addr=0x${(FIRST_DISK_SLOT + i).toString(16)}`]
    if (spec.boot.kind === 'disk' && i === 0) device.push('bootindex=1')
    argv.push('-device', device.join(','))
  })
  const nics = spec.nics ?? []
  nics.forEach((nic, i) => {
    // script=no: the agent made the tap and put it on its bridge; vhost=off: no /dev/vhost-net in
    // network namespaces here. The ifname is host-side only: it is not part of the migration stream.
    argv.push('-netdev', `tap,id=net${i},ifname=${escapeOption(nic.tap)},script=no,downscript=no,vhost=off`)
    const device = ['virtio-net-pci', `id=nic${i}`, `netdev=net${i}`, `mac=${nic.mac}`, 'bus=pci.0', `addr=0x${NIC_SLOT.toString(16)}.0x${i.toString(16)}`]
    // Functions 1… of a slot are only seen by the guest when function 0 says it has siblings.
    if (i === 0 && nics.length > 1) device.push('multifunction=on')
    argv.push('-device', device.join(','))
  })
  if (spec.seed !== undefined) {
    // The i440fx machine's built-in PIIX IDE: secondary bus, master — a fixed address outside the
    // PCI slots above, so the device set is the same on a migration's both sides.
    argv.push('-blockdev', JSON.stringify({
      driver: 'raw',
      'node-name': 'seed',
      'read-only': true,
      file: { driver: 'file', filename: `${paths.dir}/${SEED_ISO}`, 'read-only': true }
    }))
    argv.push('-device', 'ide-cd,id=seed,drive=seed,bus=ide.1,unit=0')
  }
  if (launch.incoming === 'defer') argv.push('-incoming', 'defer', '-S')
  else if (launch.paused === true) argv.push('-S')
  if (launch.daemonize !== false) argv.push('-daemonize')
  return argv
}

/** QEMU's option syntax splits on commas; a literal comma in a value is written twice. */
export function escapeOption (value: string): string {
  return value.replaceAll(',', ',,')
}
