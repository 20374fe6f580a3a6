/**
 * gossipsub and connection-manager settings for a private cluster of 3–1,000 hosts.
 *
 * Each choice answers a trap measured with libp2p here:
 *
 * - Signatures: `StrictSign` on every node (a node with another policy rejects every message,
 *   silently). The signature is what lets the topic validator check signer = host_id.
 * - Publishing before the mesh forms drops the message: gossipsub only sends to peers it
 *   already knows subscribe to the topic. We (1) flood news — a host's first advert, every
 *   change, and a re-publish when the first subscriber appears if the latest advert reached
 *   nobody — to every connected subscriber, not only the mesh (`floodPublish` per publish;
 *   heartbeats ride the mesh, D copies instead of one per connection); (2) allow publishing
 *   to zero peers (a lone first host is not an error).
 * - Star topologies: every host first connects to the same bootstrap host. With Dhi = 12 it
 *   prunes all but D of them, and a pruned host may not graft there again for the prune
 *   backoff (60 s by default), so with no other connection it starves. We (1) have the
 *   PeerConnector dial `targetPeers` random hosts from the view within a connect interval, so
 *   the star dissolves, (2) raise Dhi to 16 and (3) shorten the prune backoff to 15 s.
 * - Mesh degree: D = 4 (Dlo 3, Dout 1) instead of gossipsub's 6. Every copy costs
 *   the receiver a noise decryption, a parse and a seen-cache lookup, and a host receives ~D
 *   copies of every advert: measured with 20 hosts, D = 4 uses 30 % less CPU than D = 6. Paths
 *   grow by a fraction of a hop (log_4 N: 3 at 50 hosts, 5 at 1,000, each ~1 ms on a LAN). A
 *   lost advert is a hint that the next heartbeat replaces, and IHAVE/IWANT gossip repairs
 *   holes within a gossip heartbeat, so the extra redundancy of D = 6 buys little here.
 * - IHAVE gossip to Dlazy = 2 peers a heartbeat instead of 6: every IHAVE is a frame sent and
 *   received (noise, yamux, a parse), and with few messages in flight idle hosts mostly tell each
 *   other ids they already hold. gossipsub still gossips to a quarter of the eligible peers when
 *   that is more (gossipFactor), so repair reach grows with the host's connections. Measured at 11
 *   idle agents: 1.98 % → 1.69 % of a core (docs/benchmarks.md, "IHAVE to two peers").
 * - Peer scoring's IP colocation factor penalises > 10 peers on one IP; all test peers share
 *   127.0.0.1 and NATed racks share one address. The pre-shared key already keeps Sybils out,
 *   so the factor is off (weight 0).
 * - The connection manager refuses > 5 inbound connections/s per IP by default: 100 hosts on
 *   one machine (or a rack rebooting behind one NAT) trip it. Raised to 500/s; strangers are
 *   still stopped at the pnet handshake.
 * - Duplicates: gossipsub verifies a message's signature *before* its seen-cache lookup unless
 *   a fast message id is given, so each of the ~D copies a host receives cost an Ed25519
 *   verification (measured: 22 % of all CPU at 30 hosts, the loop saturated at 50). The fast id
 *   (signer + seqno, what the StrictSign message id is made of) drops copies unverified; only
 *   messages whose signature checked out enter that cache, so a forgery cannot shadow the original.
 * - Heartbeat 1 s on a LAN (mesh repair and IHAVE), seenTTL kept at 2 min: a duplicate
 *   arriving later than that is stale by (incarnation, seq) anyway.
 */
import type { GossipsubOpts } from '@libp2p/gossipsub'

export const GOSSIP_D = 4
export const GOSSIP_DLO = 3
export const GOSSIP_DHI = 16
export const GOSSIP_DLAZY = 2
export const GOSSIP_DOUT = 1
/** Backoff after a PRUNE; shorter than the 60 s default so a pruned host re-grafts soon. */
export const GOSSIP_PRUNE_BACKOFF_MS = 15_000
/** Inbound connections per second per remote IP. */
export const INBOUND_CONNECTIONS_PER_IP_PER_S = 500
/** Upgrades (pnet + noise + yamux) allowed in flight at once. */
export const MAX_PENDING_INBOUND_CONNECTIONS = 64
/** Messages on our topics are adverts; anything bigger is refused before decoding. */
export const MAX_GOSSIP_DATA_BYTES = 512 * 1024
/**
 * IDONTWANT (gossipsub 1.2) only for messages at least this big, i.e. never for adverts: by default
 * (512 bytes) every new advert (~1 KB) made each host send an IDONTWANT to each of its other mesh
 * peers, as many control messages as advert copies, to save a duplicate that on a LAN has mostly
 * been forwarded already (the forwarder validates and forwards before the IDONTWANT arrives).
 */
export const IDONTWANT_MIN_DATA_BYTES = MAX_GOSSIP_DATA_BYTES

/** Signer and sequence number of a raw message: unique per published message under StrictSign. */
export function fastMessageId (msg: { from?: Uint8Array, seqno?: Uint8Array }): string {
  if (msg.from == null || msg.seqno == null) return ''
  return Buffer.from(msg.from).toString('base64') + Buffer.from(msg.seqno).toString('base64')
}

export function gossipOptions (heartbeatMs: number): Partial<GossipsubOpts> {
  return {
    fastMsgIdFn: fastMessageId,
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
    idontwantMinDataSize: IDONTWANT_MIN_DATA_BYTES,
    scoreParams: { IPColocationFactorWeight: 0 }
  }
}
