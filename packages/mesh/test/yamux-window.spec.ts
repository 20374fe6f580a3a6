/**
 * yamux grants window at half the window (yamux-window.ts): small messages cost the receiver no
 * WindowUpdate frame each, and a bulk transfer still flows past many windows.
 */
import { StreamState } from '@chainsafe/libp2p-yamux/stream'
import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { pollUntil } from '@meshvirt/testkit/poll'
import { halfWindowUpdates, windowUpdateDue } from '../src/yamux-window.js'
import { TestCluster } from './helpers.js'

const PROTOCOL = '/meshvirt-test/window/1'
const KIB = 1024
/** @chainsafe/libp2p-yamux's initial stream window. */
const WINDOW = 256 * KIB

describe('windowUpdateDue', () => {
  it('waits until half the window is used on an established stream', () => {
    expect(windowUpdateDue({ state: StreamState.Established, recvWindow: WINDOW, recvWindowCapacity: WINDOW - 1000 })).toBe(false)
    expect(windowUpdateDue({ state: StreamState.Established, recvWindow: WINDOW, recvWindowCapacity: WINDOW / 2 })).toBe(false)
    expect(windowUpdateDue({ state: StreamState.Established, recvWindow: WINDOW, recvWindowCapacity: WINDOW / 2 - 1 })).toBe(true)
  })

  it('leaves every other state to yamux (SYN/ACK flags, a paused or finished stream)', () => {
    for (const state of [StreamState.Init, StreamState.SYNSent, StreamState.SYNReceived, StreamState.Paused, StreamState.Finished]) {
      expect(windowUpdateDue({ state, recvWindow: WINDOW, recvWindowCapacity: WINDOW })).toBe(true)
    }
  })

  it('leaves a stream without the expected fields to yamux', () => {
    expect(windowUpdateDue({ state: StreamState.Established, recvWindow: undefined, recvWindowCapacity: 5 })).toBe(true)
  })
})

describe('yamux windows between real mesh nodes', () => {
  const cluster = new TestCluster()
  afterEach(async () => { await cluster.stopAll() })

  it('small messages get no update each; 8 MiB after them still arrives whole', async () => {
    expect(halfWindowUpdates).toBe(true)
    const a = await cluster.start()
    const b = await cluster.start()
    let received = 0
    await b.libp2p.handle(PROTOCOL, (stream: Stream) => {
      stream.addEventListener('message', (evt) => { received += evt.data.byteLength })
    })
    const until = async (bytes: number): Promise<void> => {
      await pollUntil(() => received >= bytes, { timeoutMs: 20_000, intervalMs: 10, what: `${bytes} bytes to arrive` })
    }
    const stream = await a.libp2p.dialProtocol(multiaddr(b.multiaddrs()[0] as string), PROTOCOL)
    const sender = stream as Stream & { sendWindowCapacity: number }

    // One message first: the receiver's ACK (an update yamux sends at once) is back before we look.
    stream.send(new Uint8Array(KIB))
    await until(KIB)
    await new Promise((resolve) => setTimeout(resolve, 200))
    const established = sender.sendWindowCapacity
    expect(established).toBeGreaterThan(WINDOW / 2)

    // 50 messages of 1 KiB: well under half the window, so no update comes back.
    for (let i = 0; i < 50; i++) stream.send(new Uint8Array(KIB).fill(i))
    await until(51 * KIB)
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(sender.sendWindowCapacity).toBe(established - 50 * KIB)

    // Past half the window an update comes back and the sender has room again; 8 MiB then flow.
    const total = 51 * KIB + 8 * 1024 * KIB
    const chunk = new Uint8Array(64 * KIB).fill(7)
    for (let sent = 51 * KIB; sent < total; sent += chunk.byteLength) {
      if (!stream.send(chunk)) await new Promise((resolve) => { stream.addEventListener('drain', resolve, { once: true }) })
    }
    await until(total)
    expect(received).toBe(total)
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(sender.sendWindowCapacity).toBeGreaterThan(0)
    await stream.close()
  }, 30_000)
})
