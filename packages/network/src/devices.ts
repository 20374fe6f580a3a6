import { VXLAN_AGEING_S, VXLAN_PORT } from './constants.js'
import { bridgeName, gatewayMac, vxlanName } from './identity.js'
import { deleteLink, readLink, setLink } from './links.js'
import { mustRun } from './runner.js'
import type { CommandRunner } from './runner.js'
import { HostNetworkError } from './types.js'
import type { NetworkConfig } from './types.js'

/**
 * A network's two devices, created or adopted as found and brought to the wanted settings. Each
 * pushes onto `undo` how to remove what it created, so a failed ensureNetwork leaves nothing.
 */

/** Steps that take back what a call created, run last-first when the call fails. */
export type Undo = Array<() => Promise<unknown>>

/** The bridge: the gateway's MAC and address, the network's MTU, up. */
export async function ensureBridge (run: CommandRunner, net: NetworkConfig, undo: Undo): Promise<void> {
  const bridge = bridgeName(net.vni)
  let link = await readLink(run, bridge)
  if (link !== undefined && link.kind !== 'bridge') throw new HostNetworkError(`${bridge} exists and is not a bridge (${link.kind ?? 'unknown kind'})`)
  if (link === undefined) {
    // addrgenmode none: every host's bridge has the gateway's MAC, so their IPv6 link-local addresses would clash over the overlay.
    await mustRun(run, 'ip', ['link', 'add', bridge, 'type', 'bridge'])
    undo.push(async () => await deleteLink(run, bridge))
    await mustRun(run, 'ip', ['link', 'set', 'dev', bridge, 'addrgenmode', 'none'])
    link = await readLink(run, bridge)
    if (link === undefined) throw new HostNetworkError(`${bridge} vanished right after it was created`)
  }
  await setLink(run, link, { mtu: net.mtu, address: gatewayMac(net.vni) })
  const prefix = net.subnet.split('/')[1] as string
  const addrs = JSON.parse(await mustRun(run, 'ip', ['-j', '-4', 'addr', 'show', 'dev', bridge]) || '[]') as Array<{ addr_info?: Array<{ local: string, prefixlen: number }> }>
  const has = (addrs[0]?.addr_info ?? []).some((a) => a.local === net.gateway && String(a.prefixlen) === prefix)
  if (!has) await mustRun(run, 'ip', ['addr', 'replace', `${net.gateway}/${prefix}`, 'dev', bridge])
}

/**
 * The VXLAN device (learning on, ARP proxy), recreated if it was made with other parameters; one
 * made with learning off (before learning was turned on) is switched in place, guests undisturbed.
 */
export async function ensureVxlan (run: CommandRunner, net: NetworkConfig, underlay: string, undo: Undo): Promise<void> {
  const vxlan = vxlanName(net.vni)
  let link = await readLink(run, vxlan)
  const v = link?.vxlan
  const fits = v !== undefined && v.id === net.vni && v.local === underlay && v.port === VXLAN_PORT && v.proxy === true
  if (link !== undefined && fits && (v.learning !== true || v.ageing !== VXLAN_AGEING_S)) {
    await mustRun(run, 'ip', ['link', 'set', 'dev', vxlan, 'type', 'vxlan', 'learning', 'ageing', String(VXLAN_AGEING_S)])
    await mustRun(run, 'ip', ['link', 'set', 'dev', vxlan, 'addrgenmode', 'none'])
    await mustRun(run, 'ip', ['-6', 'addr', 'flush', 'dev', vxlan])
  }
  if (link !== undefined && !fits) {
    await mustRun(run, 'ip', ['link', 'del', 'dev', vxlan])
    link = undefined
  }
  if (link === undefined) {
    await mustRun(run, 'ip', ['link', 'add', vxlan, 'type', 'vxlan', 'id', String(net.vni), 'local', underlay, 'dstport', String(VXLAN_PORT), 'learning', 'ageing', String(VXLAN_AGEING_S), 'proxy'])
    undo.push(async () => await deleteLink(run, vxlan))
    // No IPv6 of its own: the host's neighbour discovery from this device would cross the tunnel
    // with the device's MAC, and every other host would learn that MAC (an entry no one asked for).
    await mustRun(run, 'ip', ['link', 'set', 'dev', vxlan, 'addrgenmode', 'none'])
    link = await readLink(run, vxlan)
    if (link === undefined) throw new HostNetworkError(`${vxlan} vanished right after it was created`)
  }
  await setLink(run, link, { mtu: net.mtu, master: bridgeName(net.vni) })
}
