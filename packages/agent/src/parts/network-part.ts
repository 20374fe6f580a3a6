import type { HostNetwork } from '@meshvirt/network'
import { setUpHostNetwork } from '../host/host-network-setup.js'
import { underlayAddress, underlayMtu } from '../host/underlay.js'
import { Networks } from '../network/networks.js'
import { NetworkStore } from '../store/network-store.js'
import type { NetworkLookup } from '../guest/guest-config-resource.js'
import type { AgentFeature, FeatureContext } from './feature.js'

/**
 * Virtual networks as a feature of the agent (network/): the host's network driver, the networks
 * book in the advert, each VM's ports as a per-VM resource, its addresses claimed before placement
 * and guarded at the name authorities, and the `net` commands.
 */
/** The networks feature, and a live network by name for features that render network settings (guest config). */
export function networkFeature (ctx: FeatureContext, hostNetwork?: HostNetwork): AgentFeature & { networkOf: NetworkLookup } {
  const log = ctx.root.child('network', { host: ctx.selfId })
  const underlay = underlayAddress(ctx.config)
  const host = hostNetwork ?? setUpHostNetwork(ctx.config, underlay, (message) => { log.warn(message) })
  ctx.teardown.add('host network', async () => { await host.close() })
  const networks = new Networks({
    host, store: new NetworkStore(ctx.store), underlay, underlayMtu: underlayMtu(underlay), localVms: ctx.localVms,
    readvertise: () => { ctx.events.emit('features:changed', {}) }, log
  })
  return {
    name: 'networks',
    networkOf: (name) => networks.book.live().find((n) => n.name === name),
    vmResources: [networks.ports],
    advert: () => networks.advert(),
    keyUser: (key) => networks.addressUser(key),
    attach: ({ view, peers, selfId }) => {
      networks.attach(view, peers, selfId)
      ctx.teardown.add('networks', () => { networks.stop() })
    },
    specClaims: () => networks.addressing,
    handlers: () => networks.handlers(),
    vmDeleted: async (vm) => { await networks.releaseAddresses(vm) },
    vmForceDeleted: async (vmId) => { await networks.releaseGossipedAddresses(vmId) }
  }
}
