/**
 * The overlay's throughput against the bare underlay, in namespaces of our own (no agents, no QEMU):
 * two "hosts" on a switch (a bridge in its own namespace, veth ports, underlay MTU 1500), each
 * running the built LinuxHostNetwork (network-host.ts) with one network (bridge, VXLAN, nftables,
 * dnsmasq), forwarding programmed with setPeers as the agents program it from gossip,
 * and one "guest" per host: a namespace whose veth, with the NIC's MAC and the guest MTU, is plugged
 * into the host's bridge (a tap without QEMU has no carrier). iperf3 (one TCP stream, `-t` seconds)
 * runs guest A → guest B through the overlay and host A → host B over the underlay, alternately.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, chmodSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bridgeName, defaultGuestMtu, type NetworkConfig } from '@meshvirt/network'
import { forkHost, type HostProcess } from './harness.js'
import type { NetworkHostRequest } from './network-host.js'

export interface OverlayFigures {
  overlayGbps: number[]
  underlayGbps: number[]
  /** Retransmits per run (iperf3's sender count), overlay and underlay. */
  overlayRetransmits: number[]
  underlayRetransmits: number[]
  seconds: number
  guestMtu: number
  underlayMtu: number
}

const UNDERLAY_MTU = 1500

interface Out { ok: boolean, stdout: string, stderr: string }

async function run (file: string, args: string[], timeoutMs = 30_000): Promise<Out> {
  return await new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => { resolve({ ok: err === null, stdout, stderr }) })
  })
}

/** A command inside namespace `ns` ('' = here); throws with its stderr. */
export async function must (ns: string, ...cmd: string[]): Promise<string> {
  const r = ns === '' ? await run(cmd[0] as string, cmd.slice(1)) : await run('ip', ['netns', 'exec', ns, ...cmd])
  if (!r.ok) throw new Error(`[${ns}] ${cmd.join(' ')} failed: ${r.stderr.trim()}`)
  return r.stdout
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** One iperf3 run: a server (one test, `-1`) in `server` bound to `address`, the client in `client`; bits/s received. */
async function iperf (server: string, client: string, address: string, seconds: number): Promise<{ bps: number, retransmits: number }> {
  const srv: ChildProcess = spawn('ip', ['netns', 'exec', server, 'iperf3', '-s', '-1', '-B', address], { stdio: 'ignore' })
  const exited = new Promise<void>((resolve) => { srv.once('exit', () => { resolve() }) })
  try {
    const deadline = Date.now() + 5000
    while (!(await run('ip', ['netns', 'exec', server, 'ss', '-ltnH', `src ${address}:5201`])).stdout.includes('5201')) {
      if (Date.now() > deadline) throw new Error(`iperf3 server in ${server} not listening on ${address}:5201`)
      await sleep(50)
    }
    const out = JSON.parse(await must(client, 'iperf3', '-c', address, '-t', String(seconds), '-J')) as { end: { sum_received: { bits_per_second: number }, sum_sent: { retransmits?: number } } }
    return { bps: out.end.sum_received.bits_per_second, retransmits: out.end.sum_sent.retransmits ?? 0 }
  } finally {
    const timer = setTimeout(() => { if (srv.pid !== undefined && srv.exitCode === null) process.kill(srv.pid, 'SIGKILL') }, 3000)
    await exited
    clearTimeout(timer)
  }
}

/** Asks the host to shut down; SIGKILL by pid if it has not exited 3 s later. */
async function stopHost (h: HostProcess<NetworkHostRequest>): Promise<void> {
  if (h.proc.exitCode !== null || h.proc.signalCode !== null) return
  const exited = new Promise<void>((resolve) => { h.proc.once('exit', () => { resolve() }) })
  await h.call({ op: 'shutdown' }).catch(() => {})
  const timer = setTimeout(() => { if (h.proc.pid !== undefined) try { process.kill(h.proc.pid, 'SIGKILL') } catch { /* gone */ } }, 3000)
  await exited
  clearTimeout(timer)
}

export async function measureOverlay (opts: { runs: number, seconds: number, log: (line: string) => void }): Promise<OverlayFigures> {
  const P = `mvbo${process.pid % 100000}-`
  const NS = { sw: `${P}sw`, hA: `${P}hA`, hB: `${P}hB`, gA: `${P}gA`, gB: `${P}gB` }
  const UNDERLAY = { hA: '10.208.0.1', hB: '10.208.0.2' }
  const mtu = defaultGuestMtu(UNDERLAY_MTU)
  const net: NetworkConfig = { name: 'bench', vni: 4242, subnet: '10.42.0.0/24', gateway: '10.42.0.1', mtu, nat: false, dhcp: false }
  const guests = {
    gA: { mac: '02:00:00:42:00:0a', ip: '10.42.0.10', host: 'hA' as const },
    gB: { mac: '02:00:00:42:00:0b', ip: '10.42.0.11', host: 'hB' as const }
  }
  const stateRoot = mkdtempSync(join(tmpdir(), P))
  chmodSync(stateRoot, 0o755) // dnsmasq reads its files as nobody
  const hosts: Array<HostProcess<NetworkHostRequest>> = []
  const figures: OverlayFigures = { overlayGbps: [], underlayGbps: [], overlayRetransmits: [], underlayRetransmits: [], seconds: opts.seconds, guestMtu: mtu, underlayMtu: UNDERLAY_MTU }
  try {
    await must('', 'ip', 'netns', 'add', NS.sw)
    await must(NS.sw, 'ip', 'link', 'add', 'sw0', 'type', 'bridge')
    await must(NS.sw, 'ip', 'link', 'set', 'sw0', 'up')
    for (const h of ['hA', 'hB'] as const) {
      await must('', 'ip', 'netns', 'add', NS[h])
      await must(NS.sw, 'ip', 'link', 'add', `p${h}`, 'mtu', String(UNDERLAY_MTU), 'type', 'veth', 'peer', 'name', 'u0', 'netns', NS[h])
      await must(NS.sw, 'ip', 'link', 'set', `p${h}`, 'master', 'sw0', 'up')
      await must(NS[h], 'ip', 'addr', 'add', `${UNDERLAY[h]}/24`, 'dev', 'u0')
      await must(NS[h], 'ip', 'link', 'set', 'u0', 'up')
      await must(NS[h], 'ip', 'link', 'set', 'lo', 'up')
      const host = await forkHost<NetworkHostRequest>(new URL('./network-host.js', import.meta.url), h,
        { MV_BENCH_NET_HOST: JSON.stringify({ underlay: UNDERLAY[h], stateDir: join(stateRoot, h) }) }, { netns: NS[h] })
      hosts.push(host)
      await host.call({ op: 'ensureNetwork', net })
    }
    for (const [g, spec] of Object.entries(guests) as Array<['gA' | 'gB', typeof guests.gA]>) {
      const ns = NS[g]
      await must('', 'ip', 'netns', 'add', ns)
      await must(NS[spec.host], 'ip', 'link', 'add', `v${g}`, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
      await must(NS[spec.host], 'ip', 'link', 'set', `v${g}`, 'master', bridgeName(net.vni), 'up')
      await must(ns, 'ip', 'link', 'set', 'eth0', 'address', spec.mac, 'mtu', String(mtu), 'up')
      await must(ns, 'ip', 'addr', 'add', `${spec.ip}/24`, 'dev', 'eth0')
      await must(ns, 'ip', 'link', 'set', 'lo', 'up')
    }
    // What the agents program from gossip: the other host's NIC (MAC → its underlay, IP → MAC) and flooding to it.
    const [hA, hB] = hosts as [HostProcess<NetworkHostRequest>, HostProcess<NetworkHostRequest>]
    await hA.call({ op: 'setPeers', network: net.name, peers: { floodTo: [UNDERLAY.hB], nics: [{ mac: guests.gB.mac, ip: guests.gB.ip, hostname: 'gb', underlay: UNDERLAY.hB }] } })
    await hB.call({ op: 'setPeers', network: net.name, peers: { floodTo: [UNDERLAY.hA], nics: [{ mac: guests.gA.mac, ip: guests.gA.ip, hostname: 'ga', underlay: UNDERLAY.hA }] } })
    await must(NS.gA, 'busybox', 'ping', '-c', '1', '-W', '2', guests.gB.ip)
    opts.log(`overlay: 2 hosts (LinuxHostNetwork in ${NS.hA}, ${NS.hB}), guest MTU ${mtu}, underlay MTU ${UNDERLAY_MTU}; ${opts.runs} × ${opts.seconds} s iperf3 each way`)
    for (let r = 0; r < opts.runs; r++) {
      const o = await iperf(NS.gB, NS.gA, guests.gB.ip, opts.seconds)
      const u = await iperf(NS.hB, NS.hA, UNDERLAY.hB, opts.seconds)
      figures.overlayGbps.push(Number((o.bps / 1e9).toFixed(3)))
      figures.underlayGbps.push(Number((u.bps / 1e9).toFixed(3)))
      figures.overlayRetransmits.push(o.retransmits)
      figures.underlayRetransmits.push(u.retransmits)
      opts.log(`  run ${r + 1}: overlay ${(o.bps / 1e9).toFixed(2)} Gbit/s, underlay ${(u.bps / 1e9).toFixed(2)} Gbit/s`)
    }
    return figures
  } finally {
    for (const h of hosts) {
      await h.call({ op: 'removeNetwork', name: net.name }).catch(() => {}) // stops its dnsmasq (by pid)
      await stopHost(h)
    }
    for (const ns of Object.values(NS)) await run('ip', ['netns', 'del', ns])
    rmSync(stateRoot, { recursive: true, force: true })
  }
}
