/**
 * tunnel: what the migration tunnel costs by itself, without QEMU's noise — the latency a switchover
 * pays on every round trip through it (NBD drain and flush, the return path's close) and the rate at
 * which it drains what is queued in it. Two processes on loopback, as two agents would be:
 *  - unix:    the near side writes straight to the far process's sink socket (QEMU ↔ QEMU over unix);
 *  - libp2p:  a bare `/meshvirt-bench/echo/1` stream on the cluster's connection (pnet + noise + yamux);
 *  - tunnel:  the agents' path — unix ↔ Node ↔ libp2p stream ↔ Node ↔ unix (TunnelExits + openTunnelEntrance).
 * A request is N bytes written, answered by one byte once the far side has all of it:
 *  - rtt_us_64_<path>: round trip of a 64-byte request, median;
 *  - transfer_ms_1mib_<path>, mb_s_4mib_<path>: 1 MiB request time (median), and the rate of 4 MiB ones
 *    (libp2p: an echo, so its time carries the bytes both ways and its rate counts both).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createConnection, type Socket } from 'node:net'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import type { Stream } from '@libp2p/interface'
import { createMeshNode, generateClusterKey, generateIdentity, openTunnelEntrance } from '@meshvirt/mesh'
import { forkHost, percentile, type Benchmark, type Metric } from './harness.js'
import type { TunnelHostRequest } from './tunnel-host.js'

const SIZES = [64, 64 * 1024, 1024 * 1024, 4 * 1024 * 1024]
const PATHS = ['unix', 'libp2p', 'tunnel'] as const
type Path = typeof PATHS[number]

/** Something that carries bytes to the far side; `answered(n)` resolves once n bytes came back since the last call. */
interface Pipe { send: (data: Uint8Array) => void, answered: (bytes: number) => Promise<void>, close: () => void }

function pipe (send: (data: Uint8Array) => void, listen: (fn: (bytes: number) => void) => void, close: () => void): Pipe {
  let got = 0
  let want = Infinity
  let wake: (() => void) | undefined
  listen((n) => { got += n; if (got >= want) wake?.() })
  return {
    send,
    answered: async (bytes) => {
      got = 0
      want = bytes
      await new Promise<void>((resolve) => { wake = resolve })
    },
    close
  }
}

function socketPipe (socket: Socket): Pipe {
  return pipe((data) => { socket.write(data) }, (fn) => { socket.on('data', (d: Buffer) => { fn(d.length) }) }, () => { socket.destroy() })
}

function streamPipe (stream: Stream): Pipe {
  return pipe((data) => { stream.send(data) }, (fn) => { stream.addEventListener('message', (evt) => { fn(evt.data.byteLength) }) }, () => {})
}

async function connect (path: string): Promise<Socket> {
  return await new Promise((resolve, reject) => {
    const s = createConnection({ path })
    s.once('connect', () => { resolve(s) })
    s.once('error', reject)
  })
}

/**
 * Round trips of `size`-byte requests; the echo path gets the request itself back (a libp2p
 * stream has no sink), so its figures count the bytes twice — they bound, not equal, the others.
 */
async function measure (p: Pipe, size: number, rounds: number, framed: boolean, expect: number): Promise<number[]> {
  const body = new Uint8Array(size).fill(0x5a)
  const request = framed ? Buffer.concat([Buffer.from([size >>> 24, (size >>> 16) & 0xff, (size >>> 8) & 0xff, size & 0xff]), body]) : body
  const times: number[] = []
  for (let i = 0; i < rounds; i++) {
    const t0 = process.hrtime.bigint()
    // Armed before sending: a reply may come back within the send call's own tick.
    const answered = p.answered(expect)
    p.send(request)
    await answered
    times.push(Number(process.hrtime.bigint() - t0) / 1e6)
    await new Promise((resolve) => setTimeout(resolve, 3))
  }
  return times
}

export const tunnel: Benchmark = {
  name: 'tunnel',
  description: 'round trip and transfer time through the migration tunnel vs a bare libp2p stream vs a unix socket, two processes',
  async run ({ quick, log }) {
    const dir = mkdtempSync(join(tmpdir(), 'mv-bt-'))
    const clusterKey = Buffer.from(generateClusterKey()).toString('base64')
    const sinkSocket = join(dir, 'sink.sock')
    const far = await forkHost<TunnelHostRequest>(new URL('./tunnel-host.js', import.meta.url), 'far', { MV_BENCH_TUNNEL_HOST: JSON.stringify({ clusterKey, sinkSocket }) })
    const node = await createMeshNode({
      privateKey: (await generateIdentity()).privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [],
      clusterKey: Buffer.from(clusterKey, 'base64'), clusterName: 'bench', timing: 'local'
    })
    const results: Record<Path, Record<number, number[]>> = { unix: {}, libp2p: {}, tunnel: {} }
    const rounds = quick ? 20 : 100
    try {
      await far.call({ op: 'expose', session: 'bench', peer: node.hostId })
      const echo = await node.libp2p.dialProtocol(multiaddr(far.addr), '/meshvirt-bench/echo/1')
      const entrance = await openTunnelEntrance(node.libp2p, { peer: far.hostId, session: 'bench', channel: 'ram', socketPath: join(dir, 'entrance.sock') })
      const open: Record<Path, () => Promise<Pipe>> = {
        unix: async () => socketPipe(await connect(sinkSocket)),
        libp2p: async () => streamPipe(echo),
        tunnel: async () => socketPipe(await connect(entrance.socketPath))
      }
      // Warm-up: JIT, connection windows.
      for (const path of PATHS) { const p = await open[path](); await measure(p, 1024 * 1024, 5, path !== 'libp2p', path === 'libp2p' ? 1024 * 1024 : 1); p.close() }
      for (const size of SIZES) {
        // Interleaved per size, so drift in the machine's load spreads over the three paths.
        for (const path of PATHS) {
          const pipe = await open[path]()
          const n = size >= 4 * 1024 * 1024 ? Math.max(10, rounds / 4) : rounds
          results[path][size] = await measure(pipe, size, n, path !== 'libp2p', path === 'libp2p' ? size : 1)
          pipe.close()
          log(`${path.padEnd(7)} ${String(size).padStart(8)} B × ${n}: median ${percentile(results[path][size] as number[], 50).toFixed(3)} ms, p90 ${percentile(results[path][size] as number[], 90).toFixed(3)} ms`)
        }
      }
      await entrance.close()
      echo.abort(new Error('benchmark over'))
    } finally {
      await node.stop()
      await far.call({ op: 'shutdown' }).catch(() => {})
      rmSync(dir, { recursive: true, force: true })
    }

    const med = (path: Path, size: number): number => percentile(results[path][size] ?? [], 50)
    const round3 = (x: number): number => Math.round(x * 1000) / 1000
    const metrics: Record<string, Metric> = {}
    for (const path of PATHS) {
      // The echo carries each request both ways: its rate counts the bytes that crossed.
      const crossings = path === 'libp2p' ? 2 : 1
      metrics[`rtt_us_64_${path}`] = { value: Math.round(med(path, 64) * 1000), unit: 'µs' }
      metrics[`transfer_ms_1mib_${path}`] = { value: round3(med(path, 1024 * 1024)), unit: 'ms' }
      metrics[`mb_s_4mib_${path}`] = { value: Math.round(crossings * 4 * 1.048576 / (med(path, 4 * 1024 * 1024) / 1000)), unit: 'MB/s' }
    }
    metrics.tunnel_added_rtt_us = { value: Math.round((med('tunnel', 64) - med('unix', 64)) * 1000), unit: 'µs' }

    log('')
    log('median (p90) per request, two processes on loopback; libp2p = echo, so its bytes cross twice')
    log(['size'.padEnd(10), ...PATHS.map((p) => p.padEnd(24))].join(''))
    for (const size of SIZES) {
      log([`${size} B`.padEnd(10), ...PATHS.map((p) => `${med(p, size).toFixed(3)} (${percentile(results[p][size] ?? [], 90).toFixed(3)}) ms`.padEnd(24))].join(''))
    }
    log(`the tunnel adds ${metrics.tunnel_added_rtt_us.value} µs to a small round trip; 4 MiB requests: tunnel ${metrics.mb_s_4mib_tunnel?.value} MB/s, unix ${metrics.mb_s_4mib_unix?.value} MB/s`)
    return {
      metrics,
      details: {
        paths: {
          unix: 'near process → far process\'s unix socket sink (what QEMU ↔ QEMU over unix would see)',
          libp2p: 'a bare libp2p stream (cluster-key pnet AES-256-CTR + noise + yamux over loopback TCP), echoed back whole',
          tunnel: 'unix → entrance (Node) → /meshvirt/migrate/1.0.0 stream → exit (Node) → unix sink, as a migration uses it'
        },
        request: 'N bytes (4-byte length + body on the unix and tunnel paths), answered by 1 byte once all arrived',
        rounds,
        loadAverage1m: loadavg()[0],
        samplesMs: results
      }
    }
  }
}
