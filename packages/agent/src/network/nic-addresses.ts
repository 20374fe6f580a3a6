import { createHash } from 'node:crypto'
import type { ClusterView } from '@meshvirt/mesh'
import { AddressError, contains, formatAddress, hostRange, isHostAddress, nicMac, parseAddress, parseSubnet, type Subnet } from '@meshvirt/network'
import type { VmNic, VmSpec } from '../vm/vm-spec-codec.js'
import { ControlError } from '../control/errors.js'
import type { SpecClaims } from '../negotiate/spec-claims.js'
import type { ClusterClaims } from './cluster-claims.js'
import type { NetworkBook } from './network-book.js'
import type { NetworkRecord } from './network-record.js'

/** How long a create waits to hear of a network it does not know (gossip reaches every host within ~1 s here). */
export const NETWORK_HEARD_WAIT_MS = 3_000

export const addressKey = (networkId: string, ip: string): string => `ip:${networkId}:${ip}`

/** A claim made for a VM's NIC, bound when its commit lands and released if it does not. */
export interface AddressClaim { key: string, holder: string }

/**
 * Addresses without a coordinator: each NIC's address is claimed for the VM at the rendezvous
 * authorities of (network, address), so two brokers racing for one address meet at one host and
 * only one gets it; the address belongs to the VM, not to a host's range, so it moves with it.
 */
export class NicAddressing implements SpecClaims<AddressClaim[]> {
  constructor (private readonly deps: { book: NetworkBook, claims: ClusterClaims, view: ClusterView }) {}

  /** The spec with every NIC's MAC and address filled in, and the claims that hold the addresses. */
  async assign (spec: VmSpec, vmId: string, idempotencyKey: string): Promise<{ spec: VmSpec, held: AddressClaim[] }> {
    const asked = spec.nics
    if (asked.length === 0) return { spec, held: [] }
    const claims: AddressClaim[] = []
    const nics: VmNic[] = []
    try {
      for (const [i, nic] of asked.entries()) {
        const network = await this.networkOf(nic.network, i)
        const ip = await this.claimAddress(network, nic.ip, vmId, `${idempotencyKey}/nic${i}`, i, nics)
        claims.push({ key: addressKey(network.id, ip), holder: vmId })
        nics.push({ network: network.name, ip, mac: nicMac(vmId, i) })
      }
    } catch (err) {
      await this.release(claims)
      throw err
    }
    return { spec: { ...spec, nics }, held: claims }
  }

  async bind (claims: readonly AddressClaim[]): Promise<void> {
    await Promise.all(claims.map(async (c) => { await this.deps.claims.bind(c.key, c.holder) }))
  }

  async release (claims: readonly AddressClaim[]): Promise<void> {
    await Promise.all(claims.map(async (c) => { await this.deps.claims.release(c.key, c.holder) }))
  }

  /** The claims a VM's NICs hold (to free them when it is deleted). */
  claimsOf (vmId: string, nics: ReadonlyArray<{ network: string, ip: string }>): AddressClaim[] {
    return nics.flatMap((n) => {
      const network = this.deps.book.get(n.network ?? '')
      return network === undefined || (n.ip ?? '') === '' ? [] : [{ key: addressKey(network.id, n.ip as string), holder: vmId }]
    })
  }

  /** The network by name; one created a moment ago at another agent may still be on its way here (gossip). */
  private async networkOf (name: string, i: number): Promise<NetworkRecord> {
    let network = this.deps.book.get(name)
    for (const deadline = Date.now() + NETWORK_HEARD_WAIT_MS; network === undefined && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      network = this.deps.book.get(name)
    }
    if (network === undefined) throw new ControlError('INVALID_ARGUMENT', `--net ${name}: no such network (meshvirt net ls lists them)`, { field: `nics[${i}].network` })
    return network
  }

  private async claimAddress (network: NetworkRecord, asked: string, vmId: string, key: string, i: number, earlier: readonly VmNic[]): Promise<string> {
    const subnet = parseSubnet(network.subnet)
    const gateway = parseAddress(network.gateway)
    if (asked !== '') {
      const ip = checkAsked(asked, subnet, gateway, network, i)
      if (earlier.some((n) => n.network === network.name && n.ip === asked)) throw new ControlError('INVALID_ARGUMENT', `--net ${network.name},ip=${asked}: the VM has that address on another NIC already`)
      const got = await this.deps.claims.claim(addressKey(network.id, formatAddress(ip)), vmId, key)
      if (!got.granted) throw new ControlError('ALREADY_EXISTS', `address ${asked} on network ${network.name} is taken (by VM ${got.holder}): choose another, or leave ip= out`, { field: `nics[${i}].ip` })
      return formatAddress(ip)
    }
    const used = this.usedAddresses(network.name)
    used.add(gateway)
    for (const n of earlier) if (n.network === network.name) used.add(parseAddress(n.ip as string))
    for (const candidate of addressCandidates(subnet, used, seed(`${vmId}/${i}`))) {
      const got = await this.deps.claims.claim(addressKey(network.id, formatAddress(candidate)), vmId, key)
      if (got.granted) return formatAddress(candidate)
      used.add(candidate)
    }
    throw new ControlError('RESOURCE_EXHAUSTED', `network ${network.name} (${network.subnet}) has no free address: all ${hostRange(subnet).count - 1} host addresses besides the gateway are in use`, { field: `nics[${i}].network` })
  }

  /** Addresses of the network's NICs as the hosts gossip them. */
  private usedAddresses (network: string): Set<number> {
    const used = new Set<number>()
    for (const h of this.deps.view.hosts()) {
      for (const vm of h.advert.vms) {
        for (const n of vm.nics) if (n.network === network && n.ip !== '') used.add(parseAddress(n.ip))
      }
    }
    return used
  }
}

/**
 * The subnet's host addresses not in `used`, starting at `start` (an offset into the range) and
 * wrapping: brokers creating VMs at once start at different places, so they rarely race for one.
 */
export function * addressCandidates (subnet: Subnet, used: ReadonlySet<number>, start: number): Generator<number> {
  const { first, count } = hostRange(subnet)
  for (let k = 0; k < count; k++) {
    const a = first + ((start + k) % count)
    if (!used.has(a)) yield a
  }
}

function seed (text: string): number {
  return parseInt(createHash('sha256').update(text).digest('hex').slice(0, 8), 16)
}

function checkAsked (asked: string, subnet: Subnet, gateway: number, network: NetworkRecord, i: number): number {
  let ip: number
  try {
    ip = parseAddress(asked)
  } catch (err) {
    throw new ControlError('INVALID_ARGUMENT', `--net ${network.name},ip=${asked}: ${(err as AddressError).message}`, { field: `nics[${i}].ip` })
  }
  if (!contains(subnet, ip) || !isHostAddress(subnet, ip)) throw new ControlError('INVALID_ARGUMENT', `--net ${network.name},ip=${asked}: not a host address of ${network.subnet}`, { field: `nics[${i}].ip` })
  if (ip === gateway) throw new ControlError('INVALID_ARGUMENT', `--net ${network.name},ip=${asked}: that is the network's gateway`, { field: `nics[${i}].ip` })
  return ip
}
