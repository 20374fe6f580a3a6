import { readFileSync } from 'node:fs'
import { networkInterfaces } from 'node:os'
import { DEFAULT_UNDERLAY_MTU } from '../network/network-request.js'

type Interfaces = ReturnType<typeof networkInterfaces>

/**
 * Where other hosts send this host's overlay traffic: `--underlay-address`, else the IPv4 address
 * the agent listens on (when it names one), else the first non-loopback IPv4 address of the host.
 */
export function underlayAddress (config: { underlayAddress: string | undefined, listen: string[] }, interfaces: Interfaces = networkInterfaces()): string {
  if (config.underlayAddress !== undefined) return config.underlayAddress
  for (const addr of config.listen) {
    const m = /^\/ip4\/([0-9.]+)\//.exec(addr)
    if (m !== null && m[1] !== '0.0.0.0') return m[1] as string
  }
  for (const list of Object.values(interfaces)) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address
  }
  return '127.0.0.1'
}

/** The MTU of the interface holding `address` (guests get 50 bytes less: VXLAN's overhead). */
export function underlayMtu (address: string, interfaces: Interfaces = networkInterfaces()): number {
  for (const [name, list] of Object.entries(interfaces)) {
    if (!(list ?? []).some((a) => a.address === address)) continue
    try {
      const mtu = Number(readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim())
      if (Number.isInteger(mtu) && mtu > 0) return mtu
    } catch {}
  }
  return DEFAULT_UNDERLAY_MTU
}
