import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import { clusterProtector, generateClusterKey } from '../src/index.js'

describe('clusterProtector', () => {
  const nodes: Array<Libp2p<{ ping: Ping }>> = []
  afterEach(async () => { await Promise.all(nodes.splice(0).map(async (n) => { await n.stop() })) })

  async function node (protector: ReturnType<typeof clusterProtector>): Promise<Libp2p<{ ping: Ping }>> {
    const n = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionProtector: protector,
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify(), ping: ping() }
    })
    nodes.push(n)
    return n
  }

  it('connects two hosts holding the same key, in both directions', async () => {
    const clusterKey = generateClusterKey()
    const a = await node(clusterProtector({ clusterKey }))
    const b = await node(clusterProtector({ clusterKey }))
    expect(await a.services.ping.ping(b.getMultiaddrs()[0] as never)).toBeGreaterThanOrEqual(0)
    expect(await b.services.ping.ping(a.getMultiaddrs()[0] as never)).toBeGreaterThanOrEqual(0)
  })

  it('refuses a peer with another key', async () => {
    const a = await node(clusterProtector({ clusterKey: generateClusterKey() }))
    const b = await node(clusterProtector({ clusterKey: generateClusterKey() }))
    await expect(a.dial(b.getMultiaddrs()[0] as never, { signal: AbortSignal.timeout(1500) })).rejects.toThrow()
    expect(a.getConnections()).toHaveLength(0)
    expect(b.getConnections()).toHaveLength(0)
  })
})
