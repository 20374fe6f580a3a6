import { contains, isHostAddress, parseAddress, parseSubnet } from './cidr.js'
import { MAX_VNI } from './identity.js'
import { HostNetworkError } from './types.js'
import type { NetworkConfig, NetworkPeers, PortConfig } from './types.js'

/**
 * The checks both drivers make before touching anything, so the simulated one refuses exactly what
 * the Linux one does. Each throws HostNetworkError naming the network or NIC and the bad field.
 */

const NAME_RE = /^[a-z0-9][a-z0-9-]{0,30}$/
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/

/** Ethernet needs 68 for IPv4 (RFC 791); a jumbo underlay allows up to 9000 − 50. */
const MIN_MTU = 68
const MAX_MTU = 9000

function fail (message: string): never {
  throw new HostNetworkError(message)
}

function guard<T> (what: string, parse: () => T): T {
  try {
    return parse()
  } catch (err) {
    return fail(`${what}: ${(err as Error).message}`)
  }
}

export function validateNetwork (net: NetworkConfig): void {
  const what = `network ${JSON.stringify(net.name)}`
  if (!NAME_RE.test(net.name)) fail(`${what}: the name must match [a-z0-9][a-z0-9-]{0,30}`)
  if (!Number.isInteger(net.vni) || net.vni < 1 || net.vni > MAX_VNI) fail(`${what}: the VXLAN id ${net.vni} is not in 1 … ${MAX_VNI}`)
  if (!Number.isInteger(net.mtu) || net.mtu < MIN_MTU || net.mtu > MAX_MTU) fail(`${what}: the MTU ${net.mtu} is not in ${MIN_MTU} … ${MAX_MTU}`)
  const subnet = guard(what, () => parseSubnet(net.subnet))
  const gateway = guard(what, () => parseAddress(net.gateway))
  if (!isHostAddress(subnet, gateway)) fail(`${what}: the gateway ${net.gateway} is not a host address of ${net.subnet}`)
}

/** A port is checked against its network: the address must be a host address of it, and not the gateway's. */
export function validatePort (port: PortConfig, net: NetworkConfig): void {
  const what = `NIC ${port.nicIndex} of VM ${port.vmId}`
  if (!Number.isInteger(port.nicIndex) || port.nicIndex < 0 || port.nicIndex > 9) fail(`${what}: the NIC index must be 0 … 9`)
  if (port.vmId.length === 0) fail(`${what}: the VM id is empty`)
  if (!MAC_RE.test(port.mac)) fail(`${what}: ${JSON.stringify(port.mac)} is not a lower-case MAC (aa:bb:cc:dd:ee:ff)`)
  if (!/^[a-zA-Z0-9][a-zA-Z0-9-]{0,62}$/.test(port.hostname)) fail(`${what}: ${JSON.stringify(port.hostname)} is not a host name`)
  const ip = guard(what, () => parseAddress(port.ip))
  const subnet = parseSubnet(net.subnet)
  if (!isHostAddress(subnet, ip) || !contains(subnet, ip)) fail(`${what}: ${port.ip} is not a host address of ${net.name} (${net.subnet})`)
  if (port.ip === net.gateway) fail(`${what}: ${port.ip} is the gateway of ${net.name}`)
}

export function validateMac (mac: string, what: string): void {
  if (!MAC_RE.test(mac)) fail(`${what}: ${JSON.stringify(mac)} is not a lower-case MAC (aa:bb:cc:dd:ee:ff)`)
}

export function validateAddress (text: string, what: string): void {
  guard(what, () => parseAddress(text))
}

/** Gossip is checked too: one bad NIC must not make the kernel refuse a whole batch half-way. */
export function validatePeers (peers: NetworkPeers, net: NetworkConfig): void {
  for (const host of peers.floodTo) validateAddress(host, `network ${net.name}: flood target`)
  const subnet = parseSubnet(net.subnet)
  for (const nic of peers.nics) {
    const what = `network ${net.name}: remote NIC ${nic.mac}`
    validateMac(nic.mac, what)
    validateAddress(nic.underlay, what)
    if (!contains(subnet, guard(what, () => parseAddress(nic.ip)))) fail(`${what}: ${nic.ip} is not in ${net.subnet}`)
  }
}
