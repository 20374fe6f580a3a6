/**
 * IPv4 address maths for overlay networks: parsing, containment, overlap and the usable host range
 * of a subnet. Pure; addresses are unsigned 32-bit numbers inside, dotted quads at the edges.
 */

export interface Subnet {
  /** The network address, e.g. 10.0.0.0 for 10.0.0.7/24 normalised. */
  network: number
  prefix: number
}

export class AddressError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'AddressError'
  }
}

/** `a.b.c.d` → number; throws AddressError naming the input. */
export function parseAddress (text: string): number {
  const parts = text.split('.')
  if (parts.length !== 4 || parts.some((p) => !/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255)) {
    throw new AddressError(`'${text}' is not an IPv4 address (a.b.c.d)`)
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0)
}

export function formatAddress (n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.')
}

/** Overlays use /8 … /30: a /31 or /32 has no room for a gateway and a guest. */
export const MIN_PREFIX = 8
export const MAX_PREFIX = 30

/** `10.0.0.0/24` → Subnet. The address must be the network address (no host bits), so typos are caught. */
export function parseSubnet (text: string): Subnet {
  const m = /^([^/]+)\/([0-9]{1,2})$/.exec(text)
  if (m === null) throw new AddressError(`'${text}' is not a CIDR subnet (e.g. 10.10.0.0/24)`)
  const address = parseAddress(m[1] as string)
  const prefix = Number(m[2])
  if (prefix < MIN_PREFIX || prefix > MAX_PREFIX) throw new AddressError(`'${text}': the prefix must be /${MIN_PREFIX} to /${MAX_PREFIX}`)
  const network = address - (address % size(prefix))
  if (network !== address) throw new AddressError(`'${text}' has host bits set; did you mean ${formatAddress(network)}/${prefix}?`)
  return { network, prefix }
}

export function formatSubnet (s: Subnet): string {
  return `${formatAddress(s.network)}/${s.prefix}`
}

function size (prefix: number): number {
  return 2 ** (32 - prefix)
}

export function contains (s: Subnet, address: number): boolean {
  return address >= s.network && address < s.network + size(s.prefix)
}

export function overlaps (a: Subnet, b: Subnet): boolean {
  return a.network < b.network + size(b.prefix) && b.network < a.network + size(a.prefix)
}

/** The first and last usable host address (the network and broadcast addresses excluded). */
export function hostRange (s: Subnet): { first: number, last: number, count: number } {
  const first = s.network + 1
  const last = s.network + size(s.prefix) - 2
  return { first, last, count: last - first + 1 }
}

/** Is `address` a usable host address of the subnet (not its network or broadcast address)? */
export function isHostAddress (s: Subnet, address: number): boolean {
  const { first, last } = hostRange(s)
  return address >= first && address <= last
}

/** The default gateway: the subnet's first host address. */
export function defaultGateway (s: Subnet): number {
  return hostRange(s).first
}

/** The netmask in dotted form (DHCP, static guest configuration). */
export function netmask (s: Subnet): string {
  return formatAddress(2 ** 32 - size(s.prefix))
}
