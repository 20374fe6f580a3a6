import { AddressError, defaultGateway, formatAddress, formatSubnet, isHostAddress, overlaps, parseAddress, parseSubnet } from '@meshvirt/network'
import type { meshvirt } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'
import { isLive, type NetworkRecord } from './network-record.js'

/** Network names: short, DNS-label-like (they name the network in `--net NAME` and in DNS search lists). */
export const NETWORK_NAME = /^[a-z0-9][a-z0-9-]{0,30}$/
/** VXLAN's overhead on the underlay (outer Ethernet, IP, UDP and VXLAN headers). */
export const VXLAN_OVERHEAD = 50
export const DEFAULT_UNDERLAY_MTU = 1500
export const MIN_MTU = 576
export const MAX_MTU = 9000 - VXLAN_OVERHEAD

/** A network as asked for, validated; the VXLAN id and identity come from the creation. */
export type NetworkDraft = Pick<NetworkRecord, 'name' | 'subnet' | 'gateway' | 'mtu' | 'nat' | 'dhcp'>

/**
 * Validates `net create` once, at the edge: every message names the flag. Refuses a subnet that
 * overlaps one the cluster already has (another name): two networks could not both be routed.
 */
export function parseCreateNetwork (req: meshvirt.v1.ICreateNetwork, known: readonly NetworkRecord[], underlayMtu = DEFAULT_UNDERLAY_MTU): NetworkDraft {
  const name = req.name ?? ''
  if (!NETWORK_NAME.test(name)) throw invalid('name', `'${name}' must be 1–31 lowercase letters, digits or '-', starting with a letter or digit`)
  const subnet = wrap('subnet', () => parseSubnet(req.subnet ?? ''))
  let gateway = defaultGateway(subnet)
  if ((req.gateway ?? '') !== '') {
    gateway = wrap('gateway', () => parseAddress(req.gateway as string))
    if (!isHostAddress(subnet, gateway)) throw invalid('gateway', `${req.gateway as string} is not a host address of ${formatSubnet(subnet)}`)
  }
  // Default: the underlay's MTU less VXLAN's overhead (a loopback underlay's 64 KiB is capped to jumbo frames).
  const mtu = (req.mtu ?? 0) === 0 ? Math.min(underlayMtu - VXLAN_OVERHEAD, MAX_MTU) : req.mtu as number
  if (mtu < MIN_MTU || mtu > MAX_MTU) throw invalid('mtu', `${mtu} is outside ${MIN_MTU}–${MAX_MTU}`)
  const clash = known.find((n) => isLive(n) && n.name !== name && overlaps(parseSubnet(n.subnet), subnet))
  if (clash !== undefined) throw invalid('subnet', `${formatSubnet(subnet)} overlaps network ${clash.name} (${clash.subnet})`)
  return { name, subnet: formatSubnet(subnet), gateway: formatAddress(gateway), mtu, nat: req.nat === true, dhcp: req.noDhcp !== true }
}

/** Would this creation, asked again, make the network that exists? (`net create` is idempotent.) */
export function sameDefinition (draft: NetworkDraft, n: NetworkRecord): boolean {
  return draft.subnet === n.subnet && draft.gateway === n.gateway && draft.mtu === n.mtu && draft.nat === n.nat && draft.dhcp === n.dhcp
}

function invalid (field: string, message: string): ControlError {
  return new ControlError('INVALID_ARGUMENT', `--${field}: ${message}`, { field })
}

function wrap<T> (field: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (err instanceof AddressError) throw invalid(field, err.message)
    throw err
  }
}
