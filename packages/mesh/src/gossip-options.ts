/**
 * gossipsub and connection-manager settings for a private cluster of 3–1,000 hosts.
 *
 * Each choice answers a trap measured with libp2p here:
 *
 * - Signatures: `StrictSign` on every node (a node with another policy rejects every message,
 *   silently). The signature is what lets the topic validator check signer = host_id.
 * - Publishing before the mesh forms drops the message: gossipsub only sends to peers it
 *   already knows subscribe to the topic. We (1) keep `floodPublish` on, so a host's *own*
 *   advert goes to every connected subscriber, not only its mesh; (2) allow publishing to
 *   zero peers (a lone first host is not an error); and (3) the AdvertPublisher re-publishes
 *   as soon as a new peer subscribes, so the first adverts are not lost to a mesh being built.
 * - Star topologies: every host first connects to the same bootstrap host. With the default
 *   Dhi = 12 it prunes all but D = 6 of them, and a pruned host must wait the prune backoff
 *   (60 s) before grafting there again, so it starves. We (1) have the PeerConnector dial
 *   `targetPeers` random hosts from the view, so the star dissolves within a heartbeat, and
 *   (2) raise Dhi so a bootstrap host keeps more of the early joiners while that happens.
 * - Mesh degree: D = 8 (Dlo 6, Dhi 24). The mesh carries each advert in ~log_8 N hops
 *   (2 at 50 hosts, 3–4 at 1,000) with 8× duplication; Dlazy 8 gossips IHAVE to 8 more.
 * - Peer scoring's IP colocation factor penalises > 10 peers on one IP; all test peers share
 *   127.0.0.1 and NATed racks share one address. The pre-shared key already keeps Sybils out,
 *   so the factor is off (weight 0).
 * - The connection manager refuses > 5 inbound connections/s per IP by default: 100 hosts on
 *   one machine (or a rack rebooting behind one NAT) trip it. Raised to 500/s; strangers are
 *   still stopped at the pnet handshake.
 * - Heartbeat 700 ms on a LAN (mesh repair and IHAVE), seenTTL kept at 2 min: a duplicate
 *   arriving later than that is stale by (incarnation, seq) anyway.
 */
import type { GossipsubOpts } from '@libp2p/gossipsub'

export const GOSSIP_D = 8
export const GOSSIP_DLO = 6
export const GOSSIP_DHI = 24
export const GOSSIP_DLAZY = 8
export const GOSSIP_DOUT = 3
/** Backoff after a PRUNE; shorter than the 60 s default so a pruned host re-grafts soon. */
export const GOSSIP_PRUNE_BACKOFF_MS = 15_000
/** Inbound connections per second per remote IP. */
export const INBOUND_CONNECTIONS_PER_IP_PER_S = 500
/** Upgrades (pnet + noise + yamux) allowed in flight at once. */
export const MAX_PENDING_INBOUND_CONNECTIONS = 64
/** Messages on our topics are adverts; anything bigger is refused before decoding. */
export const MAX_GOSSIP_DATA_BYTES = 512 * 1024

export function gossipOptions (heartbeatMs: number): Partial<GossipsubOpts> {
  return {
    globalSignaturePolicy: 'StrictSign',
    emitSelf: false,
    floodPublish: true,
    allowPublishToZeroTopicPeers: true,
    ignoreDuplicatePublishError: true,
    fallbackToFloodsub: false,
    doPX: false,
    D: GOSSIP_D,
    Dlo: GOSSIP_DLO,
    Dhi: GOSSIP_DHI,
    Dlazy: GOSSIP_DLAZY,
    Dout: GOSSIP_DOUT,
    heartbeatInterval: heartbeatMs,
    pruneBackoff: GOSSIP_PRUNE_BACKOFF_MS,
    maxInboundDataLength: MAX_GOSSIP_DATA_BYTES,
    scoreParams: { IPColocationFactorWeight: 0 }
  }
}
