/**
 * Issue 2's guest acceptance, without our driver in the way: what scripts/build-guest produces
 * boots under plain qemu-system-x86_64 (TCG) to its ready marker, and powers itself off.
 */
import { readFile } from 'node:fs/promises'
import { execa } from 'execa'
import { beforeAll, describe, expect, it } from 'vitest'
import { ensureGuest, type TestGuest } from '@meshvirt/testkit'

let guest: TestGuest
beforeAll(async () => { guest = await ensureGuest() }, 180_000)

describe('scripts/build-guest output', () => {
  it('is an uncompressed ELF kernel and an initramfs with busybox, /init and the needed modules', async () => {
    const head = (await readFile(guest.kernel)).subarray(0, 4)
    expect([...head]).toEqual([0x7f, 0x45, 0x4c, 0x46])
    const { stdout } = await execa('cpio', ['-it', '--quiet'], { inputFile: guest.initrd })
    const files = stdout.split('\n')
    for (const f of ['init', 'bin/busybox', 'etc/acpi/PWRF/00000080', 'etc/udhcpc.script']) expect(files).toContain(f)
    for (const m of ['virtio_ring', 'virtio', 'virtio_pci', 'virtio_blk', 'failover', 'net_failover', 'virtio_net', 'button', 'evdev']) expect(files).toContain(`lib/modules/${m}.ko`)
    // The seed CD-ROM (PIIX IDE, SCSI CD-ROM, ISO 9660).
    for (const m of ['scsi_common', 'scsi_mod', 'libata', 'ata_piix', 'cdrom', 'sr_mod', 'isofs']) expect(files).toContain(`lib/modules/${m}.ko`)
  })

  it('boots under qemu-system-x86_64 (TCG) to MESHVIRT-READY', async () => {
    // meshvirt.probe=1: print the marker and power off, so QEMU (-no-reboot) exits on its own.
    const run = await execa('qemu-system-x86_64', [
      '-machine', 'pc-i440fx-7.2,accel=tcg', '-m', '128', '-nodefaults', '-no-user-config',
      '-display', 'none', '-no-reboot', '-serial', 'stdio',
      '-kernel', guest.kernel, '-initrd', guest.initrd, '-append', `${guest.cmdline} meshvirt.probe=1`
    ], { timeout: 60_000, stdin: 'ignore', reject: false })
    expect(run.stdout).toContain('MESHVIRT-READY')
    expect(run.exitCode).toBe(0)
  }, 90_000)
})
