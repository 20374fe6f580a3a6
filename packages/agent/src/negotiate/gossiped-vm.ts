import type { ClusterView } from '@meshvirt/mesh'

/**
 * A VM as the non-dead hosts' adverts summarise it: which host says it owns it (replica holders list
 * it too, with role replica). `except`: a host whose advert is not asked (this host's own, when its
 * own table has already answered: its advert may still list a VM that has just left).
 */
export function findGossipedVm (view: Pick<ClusterView, 'hosts'>, match: (vm: { id: string, name: string }) => boolean, except?: string): { id: string, owner: string } | undefined {
  for (const h of view.hosts()) {
    if (h.liveness === 'dead' || h.hostId === except) continue
    const vm = h.advert.vms.find((v) => v.role === 'owner' && match(v))
    if (vm !== undefined) return { id: vm.id, owner: h.hostId }
  }
  return undefined
}
