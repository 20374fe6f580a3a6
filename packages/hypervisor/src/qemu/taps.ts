import { access } from 'node:fs/promises'
import { TapMissingError } from '../errors.js'
import type { VmSpec } from '../types.js'

/** Where this process's network namespace lists its interfaces. */
const SYS_CLASS_NET = '/sys/class/net'

/**
 * Every NIC's tap must exist, and be a tap, before QEMU starts: given the name of a missing one,
 * QEMU would create a fresh tap on no bridge and the guest would boot cut off, silently.
 * Read in the caller's network namespace (sysfs as mounted for it, as `ip netns exec` does).
 */
export async function checkTaps (spec: VmSpec, sysClassNet = SYS_CLASS_NET): Promise<void> {
  for (const [i, nic] of (spec.nics ?? []).entries()) {
    if (!await exists(`${sysClassNet}/${nic.tap}`)) {
      throw new TapMissingError(`VM ${spec.id}: nics[${i}].tap ${nic.tap} does not exist on this host; create it (ip tuntap add ${nic.tap} mode tap) and attach it to the network's bridge first`)
    }
    // tun_flags exists only for tun/tap devices: a bridge or veth of that name is no place for a NIC.
    if (!await exists(`${sysClassNet}/${nic.tap}/tun_flags`)) {
      throw new TapMissingError(`VM ${spec.id}: nics[${i}].tap ${nic.tap} exists but is not a tap device; use the NIC's own tap`)
    }
  }
}

async function exists (path: string): Promise<boolean> {
  try { await access(path); return true } catch { return false }
}
