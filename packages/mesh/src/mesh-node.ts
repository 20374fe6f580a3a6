/**
 * The factory of a meshvirt host's libp2p node: TCP + private network (cluster key) + noise + yamux,
 * identify, ping, bootstrap and gossipsub, with capacity gossip, the cluster view, liveness
 * probing and request/response on top.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { bootstrap } from '@libp2p/bootstrap'
import { gossipsub, type GossipSub, type SignedMessage } from '@libp2p/gossipsub'
import { identify, identifyPush, type Identify, type IdentifyPush } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { peerIdFromString } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { ConnectionGater, PeerId, PrivateKey } from '@libp2p/interface'
import { AdvertPublisher } from './advert-publisher.js'
import { AdvertValidator, cloneCounters, type AdvertCounters } from './advert-validator.js'
import { ClusterView } from './cluster-view.js'
import { clusterProtector } from './cluster-protector.js'
import { connectedHostIds } from './connected-hosts.js'
// yamux streams grant window at half the window, not after every frame (see the module).
import './yamux-window.js'
// Short reads of length-prefixed frames (noise) cost no exception of their own (see the module).
import './quick-short-reads.js'
import { MeshError } from './errors.js'
import { gossipOptions, INBOUND_CONNECTIONS_PER_IP_PER_S, MAX_PENDING_INBOUND_CONNECTIONS } from './gossip-options.js'
import { InboundGate, INBOUND_UPGRADE_TIMEOUT_MS, type InboundGateStats, type RefusalReport } from './inbound-gate.js'
import { emptyAdvertContent, type HostAdvert, type HostAdvertContent } from './host-advert.js'
import { LivenessProber } from './liveness-prober.js'
import { PeerConnector } from './peer-connector.js'
import { encodeSuspicion } from './suspicion-notice.js'
import { SuspicionValidator, type SuspicionCounters } from './suspicion-validator.js'
import type { ByteBudgetInit, ByteBudgetStats } from './byte-budget.js'
import { installEd25519KeyCache } from './ed25519-key-cache.js'
import { RequestResponse, type FailedRequestReport, type HandleOptions, type RequestHandler, type RequestOptions } from './request-response.js'
import { seqnoBytes, signedAdvertOf, SignedAdverts } from './signed-adverts.js'
import { TIMING_PRESETS, type MeshTiming, type TimingPreset } from './timing.js'
import { VIEW_PROTOCOL, ViewSync } from './view-sync.js'
import { answerProbe, PROBE_PROTOCOL, probeHost } from './member-probe.js'

const CLUSTER_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/

// A type alias, not an interface: libp2p's ServiceMap needs an implicit index signature.

export type MeshServices = {
  identify: Identify
  /** Tells connected peers when this host starts serving a protocol (handlers come after the mesh). */
  identifyPush: IdentifyPush
  /** Answers the probes of hosts of releases before member-probe.ts; this one probes over its channels. */
  ping: Ping
  pubsub: GossipSub
}

export interface MeshNodeInit {
  /** The host identity (see `identityFromBytes`); its peer id is the host id. */
  privateKey: PrivateKey
  /** Listen multiaddrs, e.g. `/ip4/0.0.0.0/tcp/7400`. */
  listen: string[]
  /** Doors in: multiaddrs of any running hosts (with or without `/p2p/<id>`). */
  bootstrap?: string[]
  /** The cluster key (pnet v1 swarm-key bytes): a node without it is refused at the handshake. */
  clusterKey: Uint8Array
  /** Lowercase name; part of the gossip topic, so clusters sharing a key stay apart. */
  clusterName: string
  /** The initial advert content; the rest of the fields start empty. */
  advert?: Partial<HostAdvertContent>
  /** Must grow across restarts of this host; defaults to the wall clock in ms. */
  incarnation?: number
  /** A preset name or overrides of the LAN preset. */
  timing?: TimingPreset | Partial<MeshTiming>
  /** Addresses to advertise instead of the listen addresses (NAT, 0.0.0.0). */
  announce?: string[]
  /** Bytes of inbound requests being read at once, per peer and in all (defaults in byte-budget.ts). */
  requestBuffer?: ByteBudgetInit
  /** Told, at most once per 10 s, how many inbound connections were refused before their handshake (and from where). */
  onInboundRefused?: (report: RefusalReport) => void
  /** Told of each inbound request that ended without an answer (the requester only sees its stream end). */
  onRequestFailed?: (report: FailedRequestReport) => void
  /** Hosts this node neither dials nor accepts while it returns true (a block list; tests cut partitions with it). */
  refuse?: (hostId: string) => boolean
}

export interface MeshStats {
  adverts: AdvertCounters
  suspicions: SuspicionCounters
  published: number
  connections: number
  peers: number
  /** Bytes of inbound requests being read, and the requests refused over the per-peer or total budget. */
  requestBuffer?: ByteBudgetStats
  /** Inbound connections in the handshake, and those refused for their address's bound. */
  inbound?: InboundGateStats
  /** View sync: pulls done and adverts they brought, adverts rejected, pages served. */
  viewSync?: { pulls: number, pulled: number, rejected: number, served: number }
  /** Dials to hosts declared dead (peer-connector.ts), and those answered. */
  reconnects?: { tried: number, answered: number }
}

export interface MeshNode {
  readonly hostId: string
  readonly peerId: PeerId
  readonly incarnation: number
  /** The advert topic, `/meshvirt/<cluster>/adverts/1`. */
  readonly topic: string
  /** Suspicion notices, `/meshvirt/<cluster>/liveness/1`. */
  readonly livenessTopic: string
  readonly timing: Readonly<MeshTiming>
  readonly view: ClusterView
  /** The underlying node, for protocols mesh does not wrap. */
  readonly libp2p: Libp2p<MeshServices>
  /** Dialable addresses of this host (with `/p2p/<id>`), e.g. for others' `bootstrap`. */
  multiaddrs: () => string[]
  /** The advert most recently published. */
  advert: () => HostAdvert
  /** Merges `patch` into the advert and publishes it (coalesced); content peers would refuse is logged, not published. */
  /** Publishes within the coalescing window (`urgent`: now). */
  updateAdvert: (patch: Partial<HostAdvertContent>, opts?: { urgent?: boolean, hint?: boolean }) => void
  stats: () => MeshStats
  handle: (protocol: string, handler: RequestHandler, options?: HandleOptions) => Promise<void>
  unhandle: (protocol: string) => Promise<void>
  request: (peer: string, protocol: string, request: Uint8Array, options?: RequestOptions) => Promise<Uint8Array>
  /** Whether `peer` has declared (libp2p identify) that it serves `protocol`; false when not known yet. */
  serves: (peer: string, protocol: string) => Promise<boolean>
  stop: () => Promise<void>
}

export function advertTopic (clusterName: string): string {
  return `/meshvirt/${clusterName}/adverts/1`
}

export function livenessTopic (clusterName: string): string {
  return `/meshvirt/${clusterName}/liveness/1`
}

export function resolveTiming (timing: MeshNodeInit['timing']): MeshTiming {
  if (typeof timing === 'string') return { ...TIMING_PRESETS[timing] }
  return { ...TIMING_PRESETS.lan, ...timing }
}

export async function createMeshNode (init: MeshNodeInit): Promise<MeshNode> {
  await installEd25519KeyCache()
  if (!CLUSTER_NAME.test(init.clusterName)) {
    throw new MeshError('INVALID_CLUSTER_NAME', `cluster name ${JSON.stringify(init.clusterName)} must match ${CLUSTER_NAME.source}`)
  }
  const timing = resolveTiming(init.timing)
  const bootstrapAddrs = (init.bootstrap ?? []).map((a) => multiaddr(a))
  const withPeerIds = bootstrapAddrs.filter((a) => a.toString().includes('/p2p/')).map((a) => a.toString())

  // Before the handshake proves a peer holds the cluster key, one address holds at most a few of
  // the host's pending slots, and only for a short deadline: a flood cannot starve real peers.
  const gate = new InboundGate({ ...(init.onInboundRefused !== undefined ? { report: init.onInboundRefused } : {}) })
  const libp2p = await createLibp2p({
    privateKey: init.privateKey,
    addresses: { listen: init.listen, ...(init.announce !== undefined ? { announce: init.announce } : {}) },
    transports: [tcp()],
    connectionProtector: clusterProtector({ clusterKey: init.clusterKey }),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: withPeerIds.length > 0 ? [bootstrap({ list: withPeerIds, timeout: timing.bootstrapDelayMs })] : [],
    connectionManager: {
      inboundConnectionThreshold: INBOUND_CONNECTIONS_PER_IP_PER_S,
      maxIncomingPendingConnections: MAX_PENDING_INBOUND_CONNECTIONS,
      inboundUpgradeTimeout: INBOUND_UPGRADE_TIMEOUT_MS
    },
    connectionGater: { ...gate.gater(), ...refusing(init.refuse) },
    // libp2p's monitor aborts a connection whose ping is late; on a busy host that cuts healthy
    // links, each cut is probed and reported, and suspicions snowball (measured at 50 hosts).
    // The ClusterView decides who is dead, and its 'dead' event hangs the connection up.
    connectionMonitor: { enabled: false },
    services: {
      identify: identify(),
      identifyPush: identifyPush(),
      ping: ping(),
      pubsub: gossipsub(gossipOptions(timing.gossipHeartbeatMs))
    },
    start: false
  })

  const hostId = libp2p.peerId.toString()
  const topic = advertTopic(init.clusterName)
  const noticeTopic = livenessTopic(init.clusterName)
  const log = libp2p.logger.forComponent('meshvirt:mesh:gossip')
  const incarnation = init.incarnation ?? Date.now()
  const view = new ClusterView({ selfId: hostId, timing })
  const pubsub = libp2p.services.pubsub
  // The GossipSub interface omits publish's options, which the implementation takes.
  const publish = pubsub.publish.bind(pubsub) as (topic: string, data: Uint8Array, opts: { floodPublish: boolean }) => Promise<{ recipients: unknown[] }>
  const multiaddrs = (): string[] => libp2p.getMultiaddrs().map((a) => a.toString())
  let published = 0

  const validator = new AdvertValidator({
    isStale: (id, inc, seq) => view.isStale(id, inc, seq),
    onReject: (reason, detail, from) => { log('rejected advert from %s (%s): %s', from, reason, detail) }
  })
  const publisher = new AdvertPublisher({
    hostId,
    incarnation,
    content: { ...emptyAdvertContent(), ...init.advert },
    timing,
    addrs: () => init.announce ?? multiaddrs(),
    clusterSize: () => view.liveCount(),
    send: async (bytes, flood) => {
      published++
      const result = await publish(topic, bytes, { floodPublish: flood })
      return { recipients: result.recipients.length }
    },
    onAdvert: (advert) => { view.apply(advert) },
    onError: (err) => { log.error('publishing advert failed: %e', err) }
  })
  const suspicions = new SuspicionValidator((reason, detail) => { log('rejected suspicion notice (%s): %s', reason, detail) })
  const rr = new RequestResponse(libp2p, libp2p.logger.forComponent('meshvirt:mesh:rpc'), init.requestBuffer, init.onRequestFailed)
  const prober = new LivenessProber({
    view,
    probe: async (id, signal) => { await probeHost(rr, id, signal) },
    connected: () => [...connectedHostIds(libp2p)],
    timing,
    log,
    report: (notice) => {
      suspicions.counters.published++
      log('reporting %s unreachable', notice.hostId)
      publish(noticeTopic, encodeSuspicion(notice), { floodPublish: true })
        .catch((err: unknown) => { log.error('publishing suspicion of %s failed: %e', notice.hostId, err) })
    }
  })
  const signed = new SignedAdverts()
  const sync = new ViewSync({
    topic,
    selfId: hostId,
    adverts: signed,
    passOn: (id) => view.get(id)?.liveness === 'alive',
    self: () => ({ data: publisher.currentBytes(), seqno: seqnoBytes(BigInt(Date.now())) }),
    sign: (bytes) => init.privateKey.sign(bytes),
    apply: (advert, s) => {
      if (view.apply(advert) === 'stale') return false
      signed.remember(advert.hostId, s)
      return true
    },
    request: async (peer, protocol, request, options) => await rr.request(peer, protocol, request, options),
    log
  })

  const connector = new PeerConnector({ libp2p, view, bootstrap: bootstrapAddrs, timing, log })

  // Hosts learnt from gossip may never have been connected: give libp2p their advertised
  // addresses so that requests and liveness probes can dial them (a probe that cannot dial
  // for want of an address would count as a failed probe).
  view.subscribe((e) => {
    if (e.host.self || (e.type !== 'joined' && !(e.type === 'updated' && e.previous.addrs.join() !== e.host.advert.addrs.join()))) return
    const multiaddrs = e.host.advert.addrs.map((a) => multiaddr(a))
    libp2p.peerStore.merge(peerIdFromString(e.host.hostId), { multiaddrs })
      .catch((err: unknown) => { log('storing addresses of %s failed: %e', e.host.hostId, err) })
  })
  pubsub.topicValidators.set(topic, validator.validate)
  pubsub.topicValidators.set(noticeTopic, suspicions.validate)
  pubsub.addEventListener('message', (evt) => {
    if (evt.detail.topic === topic) {
      const advert = validator.advertOf(evt.detail)
      if (advert !== undefined && view.apply(advert) !== 'stale') signed.remember(advert.hostId, signedAdvertOf(evt.detail as SignedMessage))
    } else if (evt.detail.topic === noticeTopic) {
      const notice = suspicions.noticeOf(evt.detail)
      if (notice === undefined) return
      const outcome = view.suspect(notice)
      // Suspected ourselves: a newer advert is the refutation.
      if (outcome === 'refute') publisher.publishSoon()
      else if (outcome === 'suspected') prober.onNotice(notice.hostId)
    }
  })
  libp2p.addEventListener('peer:disconnect', (evt) => { prober.onDisconnect(evt.detail.toString()) })
  view.subscribe((e) => {
    if (e.type === 'removed') signed.forget(e.host.hostId)
    if (e.type !== 'dead') return
    libp2p.hangUp(peerIdFromString(e.host.hostId)).catch((err: unknown) => { log('hanging up on dead %s failed: %e', e.host.hostId, err) })
  })
  pubsub.addEventListener('subscription-change', (evt) => {
    if (!evt.detail.subscriptions.some((s) => s.subscribe && s.topic === topic)) return
    const peer = evt.detail.peerId.toString()
    // A host this one declared dead is back on the topic (a healed partition, whichever side
    // dialed): tell it and its half that we live, and, when more than that one host is missing
    // here, learn its half from its view at once (one pull per host per heal, not per reunion:
    // the pull brings back the rest of the missing).
    if (connector.departed.has(peer)) {
      publisher.publishSoon()
      if (connector.departed.size > 1) sync.reunite(peer)
    } else {
      publisher.onSubscriber()
    }
    sync.onPeer(peer)
  })

  await libp2p.start()
  await rr.handle(VIEW_PROTOCOL, sync.serve, { maxRequestBytes: 1024 })
  await rr.handle(PROBE_PROTOCOL, answerProbe, { maxRequestBytes: 0, timeoutMs: timing.probeTimeoutMs })
  pubsub.subscribe(topic)
  pubsub.subscribe(noticeTopic)
  publisher.start()
  connector.start()
  prober.start()
  log('host %s incarnation %d listening on %s', hostId, incarnation, multiaddrs().join(' '))

  let stopping: Promise<void> | undefined
  return {
    hostId,
    peerId: libp2p.peerId,
    incarnation,
    topic,
    livenessTopic: noticeTopic,
    timing,
    view,
    libp2p,
    multiaddrs,
    advert: () => publisher.current(),
    updateAdvert: (patch, opts) => { publisher.update(patch, opts) },
    stats: () => ({
      adverts: cloneCounters(validator.counters),
      suspicions: { ...suspicions.counters, rejected: { ...suspicions.counters.rejected } },
      published,
      connections: libp2p.getConnections().length,
      peers: connectedHostIds(libp2p).size,
      requestBuffer: rr.budget.stats(),
      inbound: gate.stats(),
      viewSync: { ...sync.counters },
      reconnects: { ...connector.counters }
    }),
    handle: async (protocol, handler, options) => { await rr.handle(protocol, handler, options) },
    unhandle: async (protocol) => { await rr.unhandle(protocol) },
    request: async (peer, protocol, request, options) => await rr.request(peer, protocol, request, options),
    serves: async (peer, protocol) => {
      try {
        return (await libp2p.peerStore.get(peerIdFromString(peer))).protocols.includes(protocol)
      } catch {
        return false
      }
    },
    stop: async () => {
      stopping ??= (async () => {
        publisher.stop()
        connector.stop()
        prober.stop()
        rr.closeChannels()
        await libp2p.stop()
      })()
      await stopping
    }
  }
}

function refusing (refuse: MeshNodeInit['refuse']): Pick<ConnectionGater, 'denyDialPeer' | 'denyInboundEncryptedConnection'> {
  if (refuse === undefined) return {}
  return {
    denyDialPeer: (peer) => refuse(peer.toString()),
    denyInboundEncryptedConnection: (peer) => refuse(peer.toString())
  }
}
