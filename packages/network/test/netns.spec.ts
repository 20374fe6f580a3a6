import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bridgeName, gatewayMac, tapName, vxlanName } from '@meshvirt/network'
import type { NetworkConfig, NetworkInventory, PortConfig } from '@meshvirt/network'
import { NsDriver, inNs, must, until } from './fixtures/netns.js'

/**
 * The Linux driver against the real kernel, in namespaces of our own: three "hosts" (hA, hB, hC)
 * on an underlay switch (10.77.0.0/24), an "outside" network behind hA's uplink, and "guests":
 * namespaces whose veth, carrying the NIC's MAC, stands in for QEMU on a tap (a tap without QEMU
 * has no carrier). Needs root, iproute2, dnsmasq, nft, busybox (udhcpc, nslookup, arping, ping)
 * and iperf3. Every name starts with mvnt<pid>- so suites can run side by side.
 */

const P = `mvnt${process.pid % 100000}-`
const NS = { sw: `${P}sw`, hA: `${P}hA`, hB: `${P}hB`, hC: `${P}hC`, out: `${P}out`, gA: `${P}gA`, gB: `${P}gB`, gA2: `${P}gA2`, gC: `${P}gC` }
const UNDERLAY = { hA: '10.77.0.1', hB: '10.77.0.2', hC: '10.77.0.3' }

const web: NetworkConfig = { name: 'web', vni: 7, subnet: '10.7.0.0/24', gateway: '10.7.0.1', mtu: 1450, nat: true, dhcp: true }
const db: NetworkConfig = { name: 'db', vni: 8, subnet: '10.8.0.0/24', gateway: '10.8.0.1', mtu: 1450, nat: false, dhcp: true }
const www: PortConfig = { network: 'web', vmId: 'vm-www', nicIndex: 0, mac: '02:00:00:00:07:0a', ip: '10.7.0.10', hostname: 'www' }
const api: PortConfig = { network: 'web', vmId: 'vm-api', nicIndex: 0, mac: '02:00:00:00:07:14', ip: '10.7.0.20', hostname: 'api' }
const pg: PortConfig = { network: 'db', vmId: 'vm-pg', nicIndex: 0, mac: '02:00:00:00:08:0a', ip: '10.8.0.10', hostname: 'pg' }

/** The suite runs the built driver (inside the namespaces, as plain node): is dist there and current? */
async function builtDriver (): Promise<'fresh' | 'missing' | 'stale'> {
  if (await stat(new URL('../dist/index.js', import.meta.url)).catch(() => undefined) === undefined) return 'missing'
  const project = fileURLToPath(new URL('../tsconfig.json', import.meta.url))
  const dry = await inNs('', process.execPath, createRequire(import.meta.url).resolve('typescript/bin/tsc'), '-b', project, '--dry')
  return /is up to date|would update timestamps/.test(dry.stdout) ? 'fresh' : 'stale'
}
const build = await builtDriver()

const hasTools = build !== 'missing' && process.getuid?.() === 0 && (await Promise.all(['ip', 'bridge', 'nft', 'dnsmasq', 'busybox', 'iperf3'].map(async (c) => (await inNs('', 'sh', '-c', `command -v ${c}`)).ok))).every(Boolean)

let stateRoot = ''
const drivers = new Map<string, NsDriver>()

function startDriver (host: 'hA' | 'hB' | 'hC'): NsDriver {
  const d = new NsDriver(NS[host], { underlay: UNDERLAY[host], stateDir: join(stateRoot, host), superviseIntervalMs: 500 })
  drivers.set(host, d)
  return d
}
const drv = (host: string): NsDriver => drivers.get(host) as NsDriver

/** A guest namespace with eth0 (the NIC's MAC and MTU) whose other end is plugged into `bridge` in `host`. */
async function plugGuest (guest: string, host: string, bridge: string, port: PortConfig, mtu: number): Promise<void> {
  const peer = `gv${guest.slice(-3).replace(/[^a-zA-Z0-9]/g, '')}`
  await must('', 'ip', 'netns', 'add', guest)
  await must(host, 'ip', 'link', 'add', peer, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', guest)
  await must(host, 'ip', 'link', 'set', peer, 'master', bridge, 'up')
  await must(guest, 'ip', 'link', 'set', 'eth0', 'address', port.mac, 'mtu', String(mtu), 'up')
  await must(guest, 'ip', 'link', 'set', 'lo', 'up')
}

async function pings (ns: string, address: string): Promise<boolean> {
  return (await inNs(ns, 'busybox', 'ping', '-c', '1', '-W', '1', address)).ok
}

async function rxPackets (ns: string, dev: string): Promise<number> {
  const [link] = JSON.parse(await must(ns, 'ip', '-j', '-s', 'link', 'show', 'dev', dev)) as Array<{ stats64: { rx: { packets: number } } }>
  return link?.stats64.rx.packets ?? 0
}

async function dnsmasqPids (): Promise<number[]> {
  const pids: number[] = []
  for (const host of ['hA', 'hB', 'hC']) {
    for (const net of await readdir(join(stateRoot, host)).catch(() => [] as string[])) {
      const pid = Number((await readFile(join(stateRoot, host, net, 'dnsmasq.pid'), 'utf8').catch(() => '')).trim())
      if (pid > 1) pids.push(pid)
    }
  }
  return pids
}

describe.skipIf(!hasTools)('LinuxHostNetwork in network namespaces (root, built dist)', () => {
  beforeAll(async () => {
    if (build === 'stale') throw new Error('packages/network/src is newer than dist: run `npm run build` first (this suite runs the built driver in namespaces)')
    stateRoot = await mkdtemp(join(tmpdir(), P))
    await chmod(stateRoot, 0o755) // dnsmasq re-reads its hosts files as nobody
    await must('', 'ip', 'netns', 'add', NS.sw)
    await must(NS.sw, 'ip', 'link', 'add', 'sw0', 'type', 'bridge')
    await must(NS.sw, 'ip', 'link', 'set', 'sw0', 'up')
    for (const host of ['hA', 'hB', 'hC'] as const) {
      await must('', 'ip', 'netns', 'add', NS[host])
      await must(NS.sw, 'ip', 'link', 'add', `p${host}`, 'type', 'veth', 'peer', 'name', 'u0', 'netns', NS[host])
      await must(NS.sw, 'ip', 'link', 'set', `p${host}`, 'master', 'sw0', 'up')
      await must(NS[host], 'ip', 'addr', 'add', `${UNDERLAY[host]}/24`, 'dev', 'u0')
      await must(NS[host], 'ip', 'link', 'set', 'u0', 'up')
      await must(NS[host], 'ip', 'link', 'set', 'lo', 'up')
      await chmod(stateRoot, 0o755)
    }
    await must('', 'ip', 'netns', 'add', NS.out)
    await must(NS.hA, 'ip', 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'o0', 'netns', NS.out)
    await must(NS.hA, 'ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'up0')
    await must(NS.hA, 'ip', 'link', 'set', 'up0', 'up')
    await must(NS.hA, 'ip', 'route', 'add', 'default', 'via', '192.0.2.2')
    await must(NS.out, 'ip', 'addr', 'add', '192.0.2.2/24', 'dev', 'o0')
    await must(NS.out, 'ip', 'link', 'set', 'o0', 'up')
    for (const host of ['hA', 'hB', 'hC'] as const) await startDriver(host).ready
  })

  afterAll(async () => {
    for (const d of drivers.values()) await d.stop()
    for (const pid of await dnsmasqPids()) {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
      if (cmdline.includes('dnsmasq') && cmdline.includes(stateRoot)) process.kill(pid, 'SIGKILL')
    }
    for (const ns of Object.values(NS)) await inNs('', 'ip', 'netns', 'del', ns)
    if (stateRoot !== '') await rm(stateRoot, { recursive: true, force: true })
  })

  it('builds bridge, VXLAN and one dnsmasq per host; a second ensureNetwork changes nothing', async () => {
    for (const host of ['hA', 'hB', 'hC']) {
      await drv(host).call('ensureNetwork', web)
      await drv(host).call('ensureNetwork', web)
    }
    const [br] = JSON.parse(await must(NS.hA, 'ip', '-j', '-d', 'link', 'show', 'dev', bridgeName(7))) as Array<{ mtu: number, address: string, flags: string[] }>
    expect(br).toMatchObject({ mtu: 1450, address: gatewayMac(7) })
    expect(br?.flags).toContain('UP')
    expect(await must(NS.hA, 'ip', '-4', '-o', 'addr', 'show', 'dev', bridgeName(7))).toContain('inet 10.7.0.1/24')
    const [vx] = JSON.parse(await must(NS.hA, 'ip', '-j', '-d', 'link', 'show', 'dev', vxlanName(7))) as Array<{ mtu: number, master: string, linkinfo: { info_data: Record<string, unknown> } }>
    expect(vx).toMatchObject({ mtu: 1450, master: bridgeName(7), linkinfo: { info_data: { id: 7, local: '10.77.0.1', port: 4789, learning: true, ageing: 86_400, proxy: true } } })
    // No IPv6 of its own (its neighbour discovery would teach the other hosts the device's MAC).
    expect((await must(NS.hA, 'ip', '-6', 'addr', 'show', 'dev', vxlanName(7))).trim()).toBe('')
    const inv = await drv('hA').call<NetworkInventory>('inventory')
    expect(inv.networks).toEqual([{ vni: 7, bridge: 'mvbr7', vxlan: true, dhcpPid: expect.any(Number) }])
    expect(await dnsmasqPids()).toHaveLength(3)
    expect(await must(NS.hA, 'nft', 'list', 'table', 'inet', 'meshvirt')).toContain('oifname "up0" masquerade')
  })

  it('attachPort creates a persistent tap on the bridge once; DHCP hands out the static address', async () => {
    const { tap } = await drv('hA').call<{ tap: string }>('attachPort', www)
    expect(await drv('hA').call('attachPort', www)).toEqual({ tap })
    expect(tap).toBe(tapName('vm-www', 0))
    const [link] = JSON.parse(await must(NS.hA, 'ip', '-j', '-d', 'link', 'show', 'dev', tap)) as Array<{ mtu: number, master: string, flags: string[], linkinfo: { info_data: { type: string, persist: boolean } } }>
    expect(link).toMatchObject({ mtu: 1450, master: 'mvbr7', linkinfo: { info_data: { type: 'tap', persist: true } } })
    expect(link?.flags).toContain('UP')
    await drv('hB').call('attachPort', api)
    await plugGuest(NS.gA, NS.hA, 'mvbr7', www, 1450)
    await plugGuest(NS.gB, NS.hB, 'mvbr7', api, 1450)

    const script = join(stateRoot, 'udhcpc.sh')
    await writeFile(script, '#!/bin/sh\n[ "$1" = bound ] && echo "ip=$ip mask=$subnet router=$router dns=$dns mtu=$mtu"\nexit 0\n', { mode: 0o755 })
    const lease = await must(NS.gA, 'busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-f', '-t', '5', '-T', '1', '-O', 'mtu', '-s', script)
    expect(lease).toContain('ip=10.7.0.10 mask=255.255.255.0 router=10.7.0.1 dns=10.7.0.1 mtu=1450')
    // A MAC this host does not know gets nothing (static leases only).
    await must(NS.gB, 'ip', 'link', 'set', 'eth0', 'address', '02:00:00:00:07:99')
    expect((await inNs(NS.gB, 'busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-f', '-t', '2', '-T', '1', '-s', script)).ok).toBe(false)
    await must(NS.gB, 'ip', 'link', 'set', 'eth0', 'address', api.mac)
    for (const [ns, port] of [[NS.gA, www], [NS.gB, api]] as const) {
      await must(ns, 'ip', 'addr', 'add', `${port.ip}/24`, 'dev', 'eth0')
      await must(ns, 'ip', 'route', 'add', 'default', 'via', '10.7.0.1')
    }
  })

  it('setPeers programs flood, unicast and neighbour entries as a diff; guests ping across hosts', async () => {
    const peersOf = (port: PortConfig, underlay: string): unknown => ({ floodTo: [underlay], nics: [{ mac: port.mac, ip: port.ip, hostname: port.hostname, underlay }] })
    const ghost = { mac: '02:00:00:00:07:63', ip: '10.7.0.99', hostname: 'ghost', underlay: UNDERLAY.hC }
    await drv('hA').call('setPeers', 'web', { floodTo: [UNDERLAY.hB, UNDERLAY.hC], nics: [{ ...api, underlay: UNDERLAY.hB }, ghost] })
    await drv('hA').call('setPeers', 'web', peersOf(api, UNDERLAY.hB))
    await drv('hA').call('setPeers', 'web', peersOf(api, UNDERLAY.hB))
    await drv('hB').call('setPeers', 'web', peersOf(www, UNDERLAY.hA))
    const fdb = (await must(NS.hA, 'bridge', 'fdb', 'show', 'dev', 'mvvx7')).split('\n').filter((l) => l.includes(' dst ')).map((l) => l.trim())
    // Flood entries permanent; a NIC's entry dynamic, so that learning can move it.
    expect(fdb.sort()).toEqual([`00:00:00:00:00:00 dst ${UNDERLAY.hB} self permanent`, `${api.mac} dst ${UNDERLAY.hB} self`])
    expect((await must(NS.hA, 'ip', 'neigh', 'show', 'dev', 'mvvx7')).trim()).toBe(`${api.ip} lladdr ${api.mac} PERMANENT`)
    expect(await until(async () => await pings(NS.gA, api.ip))).toBe(true)
    expect(await pings(NS.gB, www.ip)).toBe(true)
    expect(await pings(NS.gA, web.gateway)).toBe(true)
  })

  it('ARP for a remote NIC is answered by the local VXLAN device, never flooded', async () => {
    const ghost = { mac: '02:00:00:00:07:63', ip: '10.7.0.99', hostname: 'ghost', underlay: UNDERLAY.hC }
    await drv('hA').call('setPeers', 'web', { floodTo: [UNDERLAY.hB], nics: [{ ...api, underlay: UNDERLAY.hB }, ghost] })
    // Count ARP arriving over the overlay at hB (a table of the test's, in hB's namespace only).
    await must(NS.hB, 'nft', 'add table netdev mvntarp; add chain netdev mvntarp in { type filter hook ingress device mvvx7 priority 0; }; add rule netdev mvntarp in arp operation request counter')
    // No such guest exists anywhere: only hA's neighbour entry can answer.
    const arping = await inNs(NS.gA, 'busybox', 'arping', '-c', '1', '-w', '2', '-I', 'eth0', ghost.ip)
    expect(arping.stdout).toMatch(/Received 1 (response|reply)/)
    expect(arping.stdout.toLowerCase()).toContain(ghost.mac)
    expect(await must(NS.hB, 'nft', 'list', 'table', 'netdev', 'mvntarp')).toContain('counter packets 0 ')
    await must(NS.hB, 'nft', 'delete', 'table', 'netdev', 'mvntarp')
  })

  it('DHCP stays on its host: a guest\'s requests never cross the tunnel, so no other host refuses them', async () => {
    await drv('hA').call('setPeers', 'web', { floodTo: [UNDERLAY.hB], nics: [{ ...api, underlay: UNDERLAY.hB }] })
    await drv('hB').call('setPeers', 'web', { floodTo: [UNDERLAY.hA], nics: [{ ...www, underlay: UNDERLAY.hA }] })
    // Count DHCP arriving over the overlay at hB (a table of the test's, in hB's namespace only).
    await must(NS.hB, 'nft', 'add table netdev mvntdhcp; add chain netdev mvntdhcp in { type filter hook ingress device mvvx7 priority 0; }; add rule netdev mvntdhcp in udp dport 67 counter')
    const script = join(stateRoot, 'udhcpc.sh')
    // hA's guest asks again (broadcast DISCOVER and REQUEST): its own host answers, hB never hears it.
    expect(await must(NS.gA, 'busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-f', '-t', '5', '-T', '1', '-s', script)).toContain(`ip=${www.ip} `)
    expect(await must(NS.hB, 'nft', 'list', 'table', 'netdev', 'mvntdhcp')).toContain('counter packets 0 ')
    await must(NS.hB, 'nft', 'delete', 'table', 'netdev', 'mvntdhcp')
    // Other broadcasts still cross (the flood entries are there).
    const b0 = await rxPackets(NS.hB, 'mvvx7')
    await must(NS.gA, process.execPath, '-e', "const s=require('dgram').createSocket('udp4');s.bind(()=>{s.setBroadcast(true);s.send('x',9999,'10.7.0.255',()=>s.close())})")
    expect(await until(async () => await rxPackets(NS.hB, 'mvvx7') > b0, 2_000)).toBe(true)
  })

  it('broadcast reaches only the hosts in floodTo', async () => {
    const b0 = await rxPackets(NS.hB, 'mvvx7')
    const c0 = await rxPackets(NS.hC, 'mvvx7')
    const send = "const s=require('dgram').createSocket('udp4');s.bind(()=>{s.setBroadcast(true);let n=0;const t=setInterval(()=>{s.send('x',9999,'10.7.0.255');if(++n===3){clearInterval(t);setTimeout(()=>s.close(),50)}},20)})"
    await must(NS.gA, process.execPath, '-e', send)
    expect(await until(async () => await rxPackets(NS.hB, 'mvvx7') >= b0 + 3, 2_000)).toBe(true)
    expect(await rxPackets(NS.hC, 'mvvx7')).toBe(c0)
  })

  it('DNS on the gateway resolves local and remote VM names', async () => {
    const local = await must(NS.gA, 'busybox', 'nslookup', 'www', web.gateway)
    const remote = await must(NS.gA, 'busybox', 'nslookup', 'api', web.gateway)
    expect(local).toContain(`Address: ${www.ip}`)
    expect(remote).toContain(`Address: ${api.ip}`)
    expect((await inNs(NS.gA, 'busybox', 'nslookup', 'nobody', web.gateway)).stdout).toContain('NXDOMAIN')
  })

  it('isolates networks from each other and from the host; NAT reaches the outside only with nat', async () => {
    await drv('hA').call('ensureNetwork', db)
    await drv('hA').call('attachPort', pg)
    await plugGuest(NS.gA2, NS.hA, 'mvbr8', pg, 1450)
    await must(NS.gA2, 'ip', 'addr', 'add', `${pg.ip}/24`, 'dev', 'eth0')
    await must(NS.gA2, 'ip', 'route', 'add', 'default', 'via', db.gateway)
    expect(await until(async () => await pings(NS.gA2, db.gateway))).toBe(true)
    expect(await pings(NS.gA, '192.0.2.2')).toBe(true)
    // What must fail waits for a timeout each: all at once.
    const blocked = await Promise.all([
      pings(NS.gA2, www.ip), pings(NS.gA2, web.gateway), pings(NS.gA2, UNDERLAY.hA), pings(NS.gA2, '192.0.2.2'), pings(NS.gA, UNDERLAY.hA),
      inNs(NS.gA, 'busybox', 'nslookup', '-timeout=1', '-retry=0', 'pg', db.gateway).then((r) => r.ok)
    ])
    expect(blocked).toEqual([false, false, false, false, false, false])
    // A NAT'd guest's UDP reaches the outside, but never on the tunnel's port (it would arrive as this host's VXLAN).
    await must(NS.out, 'nft', 'add table inet mvntout; add chain inet mvntout in { type filter hook input priority 0; }; add rule inet mvntout in udp dport { 4789, 4790 } counter')
    const send = (port: number): string => `const s=require('dgram').createSocket('udp4');s.send('x',${port},'192.0.2.2',()=>s.close())`
    await must(NS.gA, process.execPath, '-e', send(4790))
    await must(NS.gA, process.execPath, '-e', send(4789))
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(await must(NS.out, 'nft', 'list', 'table', 'inet', 'mvntout')).toContain('counter packets 1 ')
    await must(NS.out, 'nft', 'delete', 'table', 'inet', 'mvntout')
  })

  it('a restarted driver adopts taps and dnsmasq untouched, and restarts a dnsmasq that died', async () => {
    const tap = tapName('vm-www', 0)
    const ifindex = async (): Promise<number> => (JSON.parse(await must(NS.hA, 'ip', '-j', 'link', 'show', 'dev', tap)) as Array<{ ifindex: number }>)[0]?.ifindex ?? -1
    const before = { tap: await ifindex(), inv: await drv('hA').call<NetworkInventory>('inventory') }
    await drv('hA').stop()
    const again = startDriver('hA')
    await again.call('ensureNetwork', web)
    await again.call('ensureNetwork', db)
    await again.call('attachPort', www)
    await again.call('attachPort', pg)
    await again.call('setPeers', 'web', { floodTo: [UNDERLAY.hB], nics: [{ ...api, underlay: UNDERLAY.hB }] })
    expect(await ifindex()).toBe(before.tap)
    expect(await again.call('inventory')).toEqual(before.inv)
    expect(await pings(NS.gA, api.ip)).toBe(true)

    const [dead] = (await drv('hB').call<NetworkInventory>('inventory')).networks
    process.kill(dead?.dhcpPid as number, 'SIGKILL')
    expect(await until(async () => {
      const pid = (await drv('hB').call<NetworkInventory>('inventory')).networks[0]?.dhcpPid
      return pid !== undefined && pid !== dead?.dhcpPid
    }, 5_000)).toBe(true)
  })

  it('a failure half-way names the command and leaves nothing behind', async () => {
    // Another VXLAN device already holds VNI 9 on port 4789: creating mvvx9 fails after mvbr9 was made.
    await must(NS.hC, 'ip', 'link', 'add', 'squat9', 'type', 'vxlan', 'id', '9', 'local', UNDERLAY.hC, 'dstport', '4789')
    const err = await drv('hC').call('ensureNetwork', { ...web, name: 'x', vni: 9, subnet: '10.9.0.0/24', gateway: '10.9.0.1' }).catch((e: Error) => e)
    expect(err).toMatchObject({ name: 'HostNetworkError', message: expect.stringMatching(/^ip link add mvvx9 type vxlan id 9 .* failed: .+/) })
    expect((await inNs(NS.hC, 'ip', 'link', 'show', 'dev', 'mvbr9')).ok).toBe(false)
    expect((await drv('hC').call<NetworkInventory>('inventory')).networks.map((n) => n.vni)).toEqual([7])
  })

  it('measures iperf3 through the overlay and over the bare underlay', async () => {
    const iperf = async (server: string, client: string, address: string): Promise<number> => {
      await must(server, 'iperf3', '-s', '-1', '-D', '-B', address)
      await until(async () => (await inNs(server, 'sh', '-c', `ss -ltn | grep -q ${address}:5201`)).ok, 3_000, 50)
      const out = JSON.parse(await must(client, 'iperf3', '-c', address, '-t', '2', '-J')) as { end: { sum_received: { bits_per_second: number } } }
      return out.end.sum_received.bits_per_second
    }
    const overlay = await iperf(NS.gB, NS.gA, api.ip)
    const underlay = await iperf(NS.hB, NS.hA, UNDERLAY.hB)
    const figures = { overlayGbps: +(overlay / 1e9).toFixed(2), underlayGbps: +(underlay / 1e9).toFixed(2), ratio: +(overlay / underlay).toFixed(2) }
    console.log(`iperf3 overlay_throughput_ratio ${JSON.stringify(figures)}`)
    expect(overlay).toBeGreaterThan(0)
  })

  it('a guest that moved to another host is followed at its first frame from there (learning), before any setPeers', async () => {
    // hA still forwards api to hB, as the gossip said before the move; hC, where api arrives, floods to hA.
    await drv('hA').call('setPeers', 'web', { floodTo: [UNDERLAY.hB], nics: [{ ...api, underlay: UNDERLAY.hB }] })
    await drv('hC').call('setPeers', 'web', { floodTo: [UNDERLAY.hA], nics: [{ ...www, underlay: UNDERLAY.hA }] })
    await must(NS.gB, 'ip', 'link', 'del', 'eth0')
    await plugGuest(NS.gC, NS.hC, 'mvbr7', api, 1450)
    await must(NS.gC, 'ip', 'addr', 'add', `${api.ip}/24`, 'dev', 'eth0')
    // The first frame from hC (the ping; ARP for www is answered on hC) moves hA's entry: the reply finds api.
    expect(await pings(NS.gC, www.ip)).toBe(true)
    const fdb = (await must(NS.hA, 'bridge', 'fdb', 'show', 'dev', 'mvvx7')).split('\n').map((l) => l.trim())
    expect(fdb).toContain(`${api.mac} dst ${UNDERLAY.hC} self`)
    expect(await pings(NS.gA, api.ip)).toBe(true)
  })

  it('VXLAN from an address that is not a tunnel peer is dropped before the device sees it', async () => {
    // After the previous case api runs on hC; gA reaches it, and hA learnt it there.
    expect(await pings(NS.gA, api.ip)).toBe(true)
    await drv('hA').call('setTunnelPeers', [UNDERLAY.hB])
    expect(await pings(NS.gC, www.ip)).toBe(false)
    await drv('hA').call('setTunnelPeers', [UNDERLAY.hB, UNDERLAY.hC])
    expect(await pings(NS.gC, www.ip)).toBe(true)
  })

  it('removeNetwork takes devices, taps, dnsmasq, files and rules away', async () => {
    const pid = (await drv('hA').call<NetworkInventory>('inventory')).networks.find((n) => n.vni === 8)?.dhcpPid as number
    await drv('hA').call('removeNetwork', 'db')
    await drv('hA').call('removeNetwork', 'db')
    const inv = await drv('hA').call<NetworkInventory>('inventory')
    expect(inv.networks.map((n) => n.vni)).toEqual([7])
    expect(inv.ports.map((p) => p.tap)).toEqual([tapName('vm-www', 0)])
    expect(await until(async () => (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')) === '', 3_000)).toBe(true)
    expect(await must(NS.hA, 'nft', 'list', 'table', 'inet', 'meshvirt')).not.toContain('mvbr8')
    await drv('hA').call('removeNetwork', 'web')
    expect(await drv('hA').call('inventory')).toEqual({ networks: [], ports: [] })
    expect((await inNs(NS.hA, 'nft', 'list', 'table', 'inet', 'meshvirt')).ok).toBe(false)
  })
})
