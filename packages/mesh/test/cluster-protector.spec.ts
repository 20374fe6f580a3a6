import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { clusterProtector, generateClusterKey } from '../src/index.js'
import { XSalsa20Stream } from '../src/xsalsa20-stream.js'

/** The cipher @libp2p/pnet uses (untyped CommonJS): the reference for wire compatibility. */
const xsalsa20 = createRequire(import.meta.url)('xsalsa20') as (nonce: Uint8Array, key: Uint8Array) => { update: (d: Uint8Array) => Uint8Array }

const key = Uint8Array.from({ length: 32 }, (_, i) => i)
const nonce = Uint8Array.from({ length: 24 }, (_, i) => 100 + i)

describe('XSalsa20Stream', () => {
  it('produces the same stream as the xsalsa20 package, whatever the chunking', () => {
    const data = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7) % 256)
    const reference = xsalsa20(nonce, key).update(data)
    for (const sizes of [[5000], [1, 63, 64, 65, 4807], [13, 13, 13, 4961], [64, 64, 128, 4744]]) {
      const s = new XSalsa20Stream(key, nonce)
      const out: number[] = []
      let at = 0
      for (const n of sizes) {
        out.push(...s.update(data.subarray(at, at + n)))
        at += n
      }
      expect(Uint8Array.from(out)).toEqual(reference)
    }
  })

  it('survives a large chunk followed by many small ones on several streams', () => {
    const a = new XSalsa20Stream(key, nonce)
    const b = new XSalsa20Stream(key, nonce)
    a.update(new Uint8Array(2 * 1024 * 1024))
    for (let i = 0; i < 2000; i++) {
      a.update(new Uint8Array(100))
      b.update(new Uint8Array(100))
    }
  })
})

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

  it('interoperates with @libp2p/pnet given the same key', async () => {
    const clusterKey = generateClusterKey()
    const ours = await node(clusterProtector({ clusterKey }))
    const theirs = await node(preSharedKey({ psk: clusterKey }))
    expect(await ours.services.ping.ping(theirs.getMultiaddrs()[0] as never)).toBeGreaterThanOrEqual(0)
    expect(await theirs.services.ping.ping(ours.getMultiaddrs()[0] as never)).toBeGreaterThanOrEqual(0)
  })

  it('refuses a peer with another key', async () => {
    const a = await node(clusterProtector({ clusterKey: generateClusterKey() }))
    const b = await node(clusterProtector({ clusterKey: generateClusterKey() }))
    await expect(a.dial(b.getMultiaddrs()[0] as never, { signal: AbortSignal.timeout(1500) })).rejects.toThrow()
    expect(a.getConnections()).toHaveLength(0)
    expect(b.getConnections()).toHaveLength(0)
  })
})
