import type { HostAdvert } from '@meshvirt/mesh'
import type { NetworkPeers, RemoteNic } from '@meshvirt/network'
import { compareText } from '../util/compare-text.js'

export interface ForwardingHost {
  hostId: string
  self: boolean
  liveness: string
  advert: Pick<HostAdvert, 'underlay' | 'vms' | 'hostname'>
}

/**
 * What this host must program for one network, from what every other host gossips (Neutron's
 * l2population): a unicast entry and a neighbour entry per remote NIC (MAC → its host's underlay
 * address, IP → MAC), and broadcast flooded only to the hosts with ports on the network. A VM two
 * hosts list during a migration's hand-over is taken from the higher epoch; a VM this host runs
 * itself (`local`, by id → epoch) is never forwarded away unless a host lists it at a newer epoch.
 * Hosts declared dead are kept: a host whose agent restarts, or that a partition hides, still
 * forwards its guests' traffic (the kernel does, not the agent), and a VM that fails over elsewhere
 * replaces its entries by its newer epoch. Only a host gone from the view is forgotten.
 */
export function peersFor (network: string, hosts: readonly ForwardingHost[], local: ReadonlyMap<string, number>): NetworkPeers {
  const best = new Map<string, { epoch: number, nics: RemoteNic[] }>()
  for (const h of hosts) {
    if (h.self || h.advert.underlay === '') continue
    for (const vm of h.advert.vms) {
      if (vm.role !== 'owner') continue
      const nics = vm.nics.filter((n) => n.network === network && n.mac !== '')
      if (nics.length === 0) continue
      const mine = local.get(vm.id)
      if (mine !== undefined && mine >= vm.epoch) continue
      const held = best.get(vm.id)
      if (held !== undefined && held.epoch >= vm.epoch) continue
      best.set(vm.id, { epoch: vm.epoch, nics: nics.map((n) => ({ mac: n.mac, ip: n.ip, hostname: vm.name, underlay: h.advert.underlay })) })
    }
  }
  const nics = [...best.values()].flatMap((b) => b.nics).sort((a, b) => compareText(a.mac, b.mac))
  const floodTo = [...new Set(nics.map((n) => n.underlay))].sort()
  return { floodTo, nics }
}
