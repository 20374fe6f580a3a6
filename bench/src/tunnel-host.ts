/**
 * The far host of the tunnel benchmark, as its own process: a mesh node with the migration tunnel
 * exits, and a unix-socket sink standing in for the destination QEMU. The sink reads framed
 * requests (4-byte big-endian length, then that many bytes) and answers each with one byte once
 * it has all of it, so the near side times "bytes written → whole request received → answer back".
 */
import '@meshvirt/mesh/polyfill'
import { rmSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { TunnelExits, createMeshNode, generateIdentity } from '@meshvirt/mesh'

export interface TunnelHostInit { clusterKey: string, sinkSocket: string }
export type TunnelHostRequest = { op: 'expose', session: string, peer: string } | { op: 'shutdown' }

/** Answers one byte per framed request; counts bytes only (no copies), as QEMU's loader would read them. */
export function serveSink (socket: Socket): void {
  let header = Buffer.alloc(0)
  let left = -1
  socket.on('data', (chunk: Buffer) => {
    let at = 0
    while (at < chunk.length) {
      if (left < 0) {
        const take = Math.min(4 - header.length, chunk.length - at)
        header = Buffer.concat([header, chunk.subarray(at, at + take)])
        at += take
        if (header.length < 4) return
        left = header.readUInt32BE(0)
        header = Buffer.alloc(0)
      }
      const take = Math.min(left, chunk.length - at)
      left -= take
      at += take
      if (left === 0) { left = -1; socket.write(Buffer.from([1])) }
    }
  })
  socket.on('error', () => {})
}

const init = JSON.parse(process.env.MV_BENCH_TUNNEL_HOST ?? '{}') as TunnelHostInit
rmSync(init.sinkSocket, { force: true })
const sink = createServer(serveSink)
await new Promise<void>((resolve) => { sink.listen(init.sinkSocket, resolve) })
const node = await createMeshNode({
  privateKey: (await generateIdentity()).privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [],
  clusterKey: Buffer.from(init.clusterKey, 'base64'), clusterName: 'bench', timing: 'local'
})
const exits = new TunnelExits(node.libp2p)
await exits.start()
await node.libp2p.handle('/meshvirt-bench/echo/1', (stream) => {
  stream.addEventListener('message', (evt) => { stream.send(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()) })
})

process.on('message', (msg: { seq: number, req: TunnelHostRequest }) => {
  const { req } = msg
  if (req.op === 'expose') {
    exits.expose({ session: req.session, channel: 'ram', socketPath: init.sinkSocket, peer: req.peer })
    process.send?.({ seq: msg.seq, ok: true })
    return
  }
  void (async () => {
    await exits.stop()
    await node.stop()
    sink.close()
    rmSync(init.sinkSocket, { force: true })
    process.send?.({ seq: msg.seq, ok: true })
    setImmediate(() => process.exit(0))
  })()
})
process.send?.({ seq: 0, ok: true, result: { hostId: node.hostId, addr: node.multiaddrs()[0] } })
