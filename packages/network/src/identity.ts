import { createHash } from 'node:crypto'

/**
 * Names and hardware addresses derived from cluster identities, so every host computes the same
 * ones without asking anybody: a VM's NIC has the same MAC (and its tap the same name) on every
 * host it ever runs on; a network's bridge, VXLAN device and gateway MAC follow from its VXLAN id.
 */

/** Every device the agent creates starts with this, so it can find (and clean up) its own. */
export const DEVICE_PREFIX = 'mv'
/** Linux interface names are at most 15 characters. */
const IFNAMSIZ = 15

export const MAX_VNI = 16_777_215

function hex (text: string, bytes: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, bytes * 2)
}

function pairs (h: string): string {
  return h.match(/../g)!.join(':')
}

/**
 * The MAC of NIC `index` of VM `vmId`: locally administered unicast (first octet 0x02), the rest
 * from a hash of the VM id and the index.
 */
export function nicMac (vmId: string, index: number): string {
  return pairs('02' + hex(`${vmId}/${index}`, 5))
}

/**
 * The distributed gateway's MAC on network `vni`: the same on every host (first octet 0x06, locally
 * administered, never one of nicMac's), so a guest keeps its ARP entry when it moves.
 */
export function gatewayMac (vni: number): string {
  return pairs('06' + vni.toString(16).padStart(10, '0'))
}

export function bridgeName (vni: number): string {
  return `${DEVICE_PREFIX}br${vni}`
}

export function vxlanName (vni: number): string {
  return `${DEVICE_PREFIX}vx${vni}`
}

/** The tap of NIC `index` of VM `vmId` (at most 15 characters, the same on every host). */
export function tapName (vmId: string, index: number): string {
  const name = `${DEVICE_PREFIX}t${hex(vmId, 4)}n${index}`
  if (name.length > IFNAMSIZ) throw new Error(`tap name ${name} is too long`)
  return name
}
