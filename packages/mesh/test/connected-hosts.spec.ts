import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Connection } from '@libp2p/interface'
import { describe, expect, it } from 'vitest'
import { connectedHostIds } from '../src/connected-hosts.js'

describe('connectedHostIds', () => {
  it('names each connected host once, from its connections, as libp2p.getPeers() would', async () => {
    const [a, b] = await Promise.all([generateKeyPair('Ed25519'), generateKeyPair('Ed25519')])
    const pa = peerIdFromPrivateKey(a)
    const pb = peerIdFromPrivateKey(b)
    // Two connections to a (one each way), one to b.
    const conns = [pa, pb, pa].map((remotePeer) => ({ remotePeer }) as unknown as Connection)
    expect(connectedHostIds({ getConnections: () => conns })).toEqual(new Set([pa.toString(), pb.toString()]))
    expect(connectedHostIds({ getConnections: () => [] }).size).toBe(0)
  })
})
