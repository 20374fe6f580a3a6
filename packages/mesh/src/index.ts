import './polyfill.js'
/**
 * @packageDocumentation
 *
 * meshvirt's mesh: a libp2p node per host (private network from the cluster key), capacity
 * gossip of signed HostAdverts, a ClusterView with liveness, and request/response over streams.
 *
 * @example
 * ```ts
 * import { createMeshNode, generateClusterKey, generateIdentity } from '@meshvirt/mesh'
 * const identity = await generateIdentity()               // persist identity.bytes
 * const node = await createMeshNode({
 *   privateKey: identity.privateKey, clusterKey: generateClusterKey(), clusterName: 'dc1',
 *   listen: ['/ip4/0.0.0.0/tcp/7400'], bootstrap: ['/ip4/10.0.0.1/tcp/7400/p2p/12D3Koo…'],
 *   advert: { labels: { zone: 'a' }, capacity }
 * })
 * node.view.subscribe((e) => console.log(e.type, e.host.hostId))
 * node.updateAdvert({ capacity: newCapacity })             // published within publishDebounceMs
 * await node.handle('/meshvirt/control/1.0.0', async (req, peer) => answer(req, peer))
 * const res = await node.request(hostId, '/meshvirt/control/1.0.0', bytes, { timeoutMs: 2000 })
 * await node.stop()
 * ```
 *
 * Migration tunnels (QEMU ↔ unix socket ↔ stream ↔ unix socket ↔ QEMU):
 * ```ts
 * const exits = new TunnelExits(dst.libp2p); await exits.start()          // destination, once
 * exits.expose({ session, channel: 'ram', socketPath: incoming.migrationSocket, peer: src.hostId })
 * const ram = await openTunnelEntrance(src.libp2p, { peer: dst.hostId, session, channel: 'ram', socketPath })
 * // source QEMU: migrate unix:<socketPath>; ram.counters says how many bytes crossed each way
 * ```
 */
export * from './host-advert.js'
export * from './advert-codec.js'
export * from './advert-limits.js'
export * from './advert-validator.js'
export * from './cluster-view.js'
export * from './cluster-protector.js'
export * from './errors.js'
export * from './gossip-options.js'
export * from './keys.js'
export * from './mesh-node.js'
export * from './signed-adverts.js'
export * from './view-sync.js'
export * from './departed-hosts.js'
export * from './request-response.js'
export { CHANNEL_PROTOCOL, CHANNEL_MAX_REQUEST_BYTES } from './request-channel.js'
export { ReporterCredit, DEFAULT_CONFIRM_WINDOW_MS, DEFAULT_REFUTED_HOLD_MS, INDEPENDENT_CONFIRMATIONS, MAX_TRACKED_REPORTERS, type ReporterCreditInit } from './reporter-credit.js'
export { ByteBudget, DEFAULT_PEER_BUFFER_BYTES, DEFAULT_SMALL_FRAME_BYTES, DEFAULT_TOTAL_BUFFER_BYTES, type ByteBudgetInit, type ByteBudgetStats } from './byte-budget.js'
export { InboundGate, PendingByAddress, MAX_PENDING_PER_ADDRESS, INBOUND_UPGRADE_TIMEOUT_MS, type InboundGateStats, type RefusalReport } from './inbound-gate.js'
export * from './suspicion.js'
export * from './suspicion-notice.js'
export * from './suspicion-validator.js'
export * from './timing.js'
export * from './tunnel-preamble.js'
export * from './tunnel-entrance.js'
export * from './tunnel-exits.js'
export { bridgeSocketStream, TUNNEL_READ_BUFFER_BYTES, TUNNEL_SOCKET_HIGH_WATER_BYTES, TUNNEL_WINDOW_BYTES } from './socket-stream-bridge.js'
