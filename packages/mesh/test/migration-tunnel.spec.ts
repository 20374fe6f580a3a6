import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { TunnelExits, openTunnelEntrance, type MeshNode, type TunnelEntrance } from '../src/index.js'
import { pollUntil } from '@meshvirt/testkit/poll'
import { TestCluster } from './helpers.js'

const MiB = 1024 * 1024

describe('migration tunnel over a libp2p stream', () => {
  const cluster = new TestCluster()
  let dir: string
  const closers: Array<() => Promise<void> | void> = []

  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'mv-tun-')) })
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close()
    await cluster.stopAll()
    await rm(dir, { recursive: true, force: true })
  })

  async function pair (): Promise<{ src: MeshNode, dst: MeshNode, exits: TunnelExits }> {
    const src = await cluster.start()
    const dst = await cluster.start()
    await pollUntil(() => src.view.get(dst.hostId) !== undefined, { timeoutMs: 10_000, intervalMs: 20, what: 'src to see dst' })
    const exits = new TunnelExits(dst.libp2p)
    await exits.start()
    closers.push(async () => { await exits.stop() })
    return { src, dst, exits }
  }

  /** A unix server standing in for the destination QEMU; `onSocket` plays its part. */
  async function target (name: string, onSocket: (s: Socket) => void): Promise<string> {
    const path = join(dir, name)
    const server: Server = createServer({ allowHalfOpen: true }, onSocket)
    await new Promise<void>((resolve) => server.listen(path, resolve))
    closers.push(async () => { await new Promise((resolve) => server.close(resolve)) })
    return path
  }

  async function entrance (src: MeshNode, dst: MeshNode, session: string, channel: 'ram' | 'nbd' = 'ram'): Promise<TunnelEntrance> {
    const e = await openTunnelEntrance(src.libp2p, { peer: dst.hostId, session, channel, socketPath: join(dir, `${session}-${channel}.in`) })
    closers.push(async () => { await e.close() })
    return e
  }

  async function connect (path: string): Promise<Socket> {
    return await new Promise((resolve, reject) => {
      const s = createConnection({ path, allowHalfOpen: true }, () => { resolve(s) })
      s.once('error', reject)
    })
  }

  it('carries 64 MiB each way intact, with backpressure against a slow reader, half-closes and counts bytes', async () => {
    const { src, dst, exits } = await pair()
    const payload = Buffer.alloc(64 * MiB)
    for (let i = 0; i < payload.length; i += 4096) payload.writeUInt32LE(i, i)
    const digest = createHash('sha256').update(payload).digest('hex')
    let received = 0
    const receivedHash = createHash('sha256')
    let destinationEnded: () => void = () => {}
    const destinationDone = new Promise<void>((resolve) => { destinationEnded = resolve })
    const path = await target('qemu.sock', (s) => {
      // A slow reader: stop reading 50 ms at every 8 MiB, so both buffers fill and must push back.
      s.on('data', (chunk: Buffer) => {
        receivedHash.update(chunk)
        const before = received
        received += chunk.length
        if (Math.floor(before / (8 * MiB)) !== Math.floor(received / (8 * MiB))) { s.pause(); setTimeout(() => s.resume(), 50) }
      })
      s.on('end', () => { s.end(payload, destinationEnded) })
    })
    exits.expose({ session: 'vm1-2', channel: 'ram', socketPath: path, peer: src.hostId })
    const tunnel = await entrance(src, dst, 'vm1-2')
    const qemu = await connect(tunnel.socketPath)
    const back = createHash('sha256')
    let backBytes = 0
    qemu.on('data', (chunk: Buffer) => { back.update(chunk); backBytes += chunk.length })
    const ended = new Promise<void>((resolve) => qemu.on('end', resolve))
    qemu.end(payload)
    await destinationDone
    await ended
    expect(receivedHash.digest('hex')).toBe(digest)
    expect(backBytes).toBe(payload.length)
    expect(back.digest('hex')).toBe(digest)
    await tunnel.idle()
    expect(tunnel.counters).toEqual({ sentBytes: payload.length, receivedBytes: payload.length, connections: 1 })
    expect(tunnel.error).toBeUndefined()
  }, 60_000)

  it('keeps what is in flight bounded against a reader that stalls often (no window granted while paused)', async () => {
    const { src, dst, exits } = await pair()
    const payload = Buffer.alloc(64 * MiB, 7)
    let received = 0
    let done: () => void = () => {}
    const finished = new Promise<void>((resolve) => { done = resolve })
    const path = await target('slow.sock', (s) => {
      // Stalls 15 ms after every 512 KiB: whenever the tunnel resumes, it holds more than its
      // socket high-water mark, which pauses the stream again in the middle of its resume.
      s.on('data', (chunk: Buffer) => {
        const before = received
        received += chunk.length
        if (Math.floor(before / (512 * 1024)) !== Math.floor(received / (512 * 1024))) { s.pause(); setTimeout(() => s.resume(), 15) }
      })
      s.on('end', () => { s.end(); done() })
    })
    exits.expose({ session: 'vm1-3', channel: 'ram', socketPath: path, peer: src.hostId })
    const tunnel = await entrance(src, dst, 'vm1-3')
    const qemu = await connect(tunnel.socketPath)
    let ahead = 0
    const sampler = setInterval(() => { ahead = Math.max(ahead, tunnel.counters.sentBytes - received) }, 2)
    try {
      qemu.end(payload)
      await finished
    } finally {
      clearInterval(sampler)
    }
    expect(received).toBe(payload.length)
    expect(tunnel.error).toBeUndefined()
    // The window (1 MiB) plus the sockets' and the bridge's buffers — not the whole guest.
    expect(ahead).toBeLessThan(8 * MiB)
    console.log(`slow reader: at most ${(ahead / MiB).toFixed(1)} MiB between the source's socket and the destination's reader`)
  }, 60_000)

  it('refuses an unknown session and a host other than the exposed source; the QEMU side sees its socket close', async () => {
    const { src, dst, exits } = await pair()
    const other = await cluster.start()
    await pollUntil(() => other.view.get(dst.hostId) !== undefined, { timeoutMs: 10_000, intervalMs: 20, what: 'other to see dst' })
    const path = await target('qemu.sock', (s) => { s.end() })
    exits.expose({ session: 'vm2-2', channel: 'nbd', socketPath: path, peer: src.hostId })

    for (const [from, session] of [[src, 'nope'], [other, 'vm2-2']] as const) {
      const tunnel = await entrance(from, dst, session, 'nbd')
      const qemu = await connect(tunnel.socketPath)
      // allowHalfOpen, as QEMU's sockets: the cut arrives as end of input.
      await new Promise<void>((resolve) => { qemu.on('end', resolve); qemu.on('close', resolve); qemu.resume() })
      qemu.destroy()
      await pollUntil(() => tunnel.error !== undefined, { timeoutMs: 10_000, intervalMs: 20, what: 'the refusal to be recorded' })
      expect(tunnel.error).toMatchObject({ code: 'TUNNEL_REFUSED', answer: from === src ? 'unknown-session' : 'wrong-peer' })
    }
  })

  it('cuts the source socket when the destination socket dies mid-stream', async () => {
    const { src, dst, exits } = await pair()
    let victim: Socket | undefined
    const path = await target('qemu.sock', (s) => { victim = s; s.resume() })
    const exit = exits.expose({ session: 'vm3-2', channel: 'ram', socketPath: path, peer: src.hostId })
    const tunnel = await entrance(src, dst, 'vm3-2')
    const qemu = await connect(tunnel.socketPath)
    const closed = new Promise<void>((resolve) => qemu.on('close', () => { resolve() }))
    qemu.on('error', () => {})
    qemu.write(Buffer.alloc(MiB))
    await pollUntil(() => exit.counters.receivedBytes === MiB, { timeoutMs: 10_000, intervalMs: 20, what: 'the first MiB to arrive' })
    victim?.destroy()
    const writer = setInterval(() => { if (!qemu.destroyed) qemu.write(Buffer.alloc(64 * 1024)) }, 5)
    await closed
    clearInterval(writer)
    await tunnel.idle()
    await exit.idle()
  })
})
