import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { LinuxHostNetwork } from '@meshvirt/network'
import type { CommandRunner, NetworkConfig, ProcessTable } from '@meshvirt/network'

/**
 * The Linux driver against a fake host: a runner that keeps a table of links and answers `ip -j`
 * queries from it, a fake /proc and a kill that only records. What it checks is the driver's logic
 * (what it runs, in which order, what it undoes); the netns suite checks the kernel's side.
 */

const web: NetworkConfig = { name: 'web', vni: 7, subnet: '10.7.0.0/24', gateway: '10.7.0.1', mtu: 1450, nat: true, dhcp: true }

interface FakeLink { ifname: string, mtu: number, address: string, flags: string[], master?: string, linkinfo: { info_kind: string, info_data: Record<string, unknown> } }

function fakeHost (dir: string, fail: (line: string) => string | undefined = () => undefined): { run: CommandRunner, processes: ProcessTable, calls: string[], signals: string[], links: Map<string, FakeLink> } {
  const links = new Map<string, FakeLink>()
  const calls: string[] = []
  const signals: string[] = []
  let nextPid = 4000
  const ok = (stdout = ''): { exitCode: number, stdout: string, stderr: string } => ({ exitCode: 0, stdout, stderr: '' })
  const run: CommandRunner = async (file, args, options) => {
    const line = [file.replace(/^.*\//, ''), ...args].join(' ')
    calls.push(options?.input === undefined ? line : `${line} <<${options.input}`)
    const error = fail(line)
    if (error !== undefined) return { exitCode: 2, stdout: '', stderr: error }
    const a = [...args]
    if (line.startsWith('ip -j -d link show dev ')) {
      const link = links.get(a[5] as string)
      return link === undefined ? { exitCode: 1, stdout: '', stderr: `Device "${a[5] as string}" does not exist.` } : ok(JSON.stringify([link]))
    }
    if (line === 'ip -j -d link show') return ok(JSON.stringify([...links.values()]))
    if (line.startsWith('ip link add ')) {
      const kind = a[4] as string
      const data: Record<string, unknown> = kind === 'vxlan' ? { id: Number(a[6]), local: a[8], port: Number(a[10]), learning: true, ageing: Number(a[13]), proxy: true } : {}
      links.set(a[2] as string, { ifname: a[2] as string, mtu: 1500, address: 'aa:aa:aa:aa:aa:aa', flags: [], linkinfo: { info_kind: kind, info_data: data } })
    }
    if (line.startsWith('ip tuntap add dev ')) links.set(a[3] as string, { ifname: a[3] as string, mtu: 1500, address: 'bb:bb:bb:bb:bb:bb', flags: [], linkinfo: { info_kind: 'tun', info_data: { type: 'tap' } } })
    if (line.startsWith('ip link del dev ')) links.delete(a[3] as string)
    if (line.startsWith('ip link set dev ')) {
      const link = links.get(a[3] as string)!
      for (let i = 4; i < a.length; i++) {
        if (a[i] === 'mtu') link.mtu = Number(a[++i])
        else if (a[i] === 'address') link.address = a[++i] as string
        else if (a[i] === 'master') link.master = a[++i]
        else if (a[i] === 'up') link.flags = ['UP']
      }
    }
    if (file.endsWith('dnsmasq')) {
      const pid = nextPid++
      const pidFile = (a.find((x) => x.startsWith('--pid-file=')) as string).slice('--pid-file='.length)
      await mkdir(join(dir, 'proc', String(pid)), { recursive: true })
      await writeFile(join(dir, 'proc', String(pid), 'cmdline'), [file, ...args].join('\0') + '\0')
      await writeFile(pidFile, `${pid}\n`)
    }
    return ok(line.includes(' -j ') ? '[]' : '')
  }
  const processes: ProcessTable = {
    proc: join(dir, 'proc'),
    kill: (pid, signal) => {
      signals.push(`${signal} ${pid}`)
      if (signal === 'SIGTERM' || signal === 'SIGKILL') void rm(join(dir, 'proc', String(pid)), { recursive: true, force: true })
    }
  }
  return { run, processes, calls, signals, links }
}

describe('LinuxHostNetwork (fake host)', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mvnt-unit-'))
    await chmod(dir, 0o755)
    await mkdir(join(dir, 'sys/net/ipv4'), { recursive: true })
    await writeFile(join(dir, 'sys/net/ipv4/ip_forward'), '0\n')
  })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  const driver = (fake: ReturnType<typeof fakeHost>): LinuxHostNetwork =>
    new LinuxHostNetwork({ underlay: '10.77.0.1', stateDir: join(dir, 'state'), run: fake.run, processes: fake.processes, procSys: join(dir, 'sys'), superviseIntervalMs: 0, uplink: 'eth0' })

  it('builds bridge, VXLAN, dnsmasq and rules once; a second ensureNetwork only reads', async () => {
    const fake = fakeHost(dir)
    const host = driver(fake)
    await host.ensureNetwork(web)
    const first = fake.calls.splice(0)
    expect(first).toContain('ip link add mvbr7 type bridge')
    expect(first).toContain('ip link set dev mvbr7 mtu 1450 address 06:00:00:00:00:07 up')
    expect(first).toContain('ip addr replace 10.7.0.1/24 dev mvbr7')
    expect(first).toContain('ip link add mvvx7 type vxlan id 7 local 10.77.0.1 dstport 4789 learning ageing 86400 proxy')
    expect(first).toContain('ip link set dev mvvx7 addrgenmode none')
    expect(first.indexOf('ip link set dev mvvx7 addrgenmode none')).toBeLessThan(first.indexOf('ip link set dev mvvx7 mtu 1450 master mvbr7 up'))
    expect(first).toContain('ip link set dev mvvx7 mtu 1450 master mvbr7 up')
    expect(first.filter((c) => c.startsWith('dnsmasq '))).toHaveLength(1)
    expect(await readFile(join(dir, 'sys/net/ipv4/ip_forward'), 'utf8')).toBe('1\n')
    await host.ensureNetwork(web)
    const again = fake.calls.filter((c) => !c.startsWith('nft ') && !/ -j /.test(c))
    expect(again).toEqual(['ip addr replace 10.7.0.1/24 dev mvbr7'])
  })

  it('a VXLAN device made with learning off (an older agent) is switched to learning in place, guests undisturbed', async () => {
    const fake = fakeHost(dir)
    await driver(fake).ensureNetwork(web)
    const data = fake.links.get('mvvx7')?.linkinfo.info_data as Record<string, unknown>
    Object.assign(data, { learning: false, ageing: 300 })
    fake.calls.splice(0)
    await driver(fake).ensureNetwork(web)
    expect(fake.calls).toContain('ip link set dev mvvx7 type vxlan learning ageing 86400')
    // Its IPv6 link-local goes: the host's own neighbour discovery would teach other hosts its MAC.
    expect(fake.calls).toContain('ip link set dev mvvx7 addrgenmode none')
    expect(fake.calls).toContain('ip -6 addr flush dev mvvx7')
    expect(fake.calls.filter((c) => c.startsWith('ip link del') || c.startsWith('ip link add'))).toEqual([])
  })

  it('setTunnelPeers re-writes the rules only when the list changes; given before any network, the first network has it', async () => {
    const fake = fakeHost(dir)
    const host = driver(fake)
    await host.setTunnelPeers(['10.77.0.3', '10.77.0.2'])
    expect(fake.calls.filter((c) => c.startsWith('nft '))).toEqual([])
    await host.ensureNetwork(web)
    expect(fake.calls.filter((c) => c.startsWith('nft ')).at(-1)).toContain('ip daddr 10.77.0.1 udp dport 4789 ip saddr != { 10.77.0.2, 10.77.0.3 } drop')
    fake.calls.splice(0)
    await host.setTunnelPeers(['10.77.0.2', '10.77.0.3'])
    expect(fake.calls).toEqual([])
    await host.setTunnelPeers(['10.77.0.2'])
    expect(fake.calls.filter((c) => c.startsWith('nft '))).toHaveLength(1)
    expect(fake.calls[0]).toContain('ip saddr != { 10.77.0.2 } drop')
    await expect(host.setTunnelPeers(['10.77.0.999'])).rejects.toThrow('tunnel peer')
    // A restarted driver keeps the list until its agent sets it again.
    fake.calls.splice(0)
    await driver(fake).ensureNetwork(web)
    expect(fake.calls.filter((c) => c.startsWith('nft ')).at(-1)).toContain('ip saddr != { 10.77.0.2 } drop')
  })

  it('close removes a state dir that holds no network (only the tunnel-peer list), and keeps one that does', async () => {
    const fake = fakeHost(dir)
    const idle = driver(fake)
    await idle.setTunnelPeers(['10.77.0.2'])
    expect(await readdir(join(dir, 'state'))).toEqual(['.tunnel-peers.json'])
    await idle.close()
    await expect(readdir(join(dir, 'state'))).rejects.toThrow('ENOENT')
    const used = driver(fake)
    await used.setTunnelPeers(['10.77.0.2'])
    await used.ensureNetwork(web)
    await used.close()
    expect((await readdir(join(dir, 'state'))).sort()).toEqual(['.tunnel-peers.json', 'web'])
  })

  it('a failing command names itself and its stderr, and what the call created is removed', async () => {
    const fake = fakeHost(dir, (line) => line.startsWith('ip link add mvvx7') ? 'RTNETLINK answers: Operation not permitted' : undefined)
    const host = driver(fake)
    const err = await host.ensureNetwork(web).catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'HostNetworkError', code: 'ERR_HOST_NETWORK', stderr: 'RTNETLINK answers: Operation not permitted' })
    expect((err as Error).message).toBe('ip link add mvvx7 type vxlan id 7 local 10.77.0.1 dstport 4789 learning ageing 86400 proxy failed: RTNETLINK answers: Operation not permitted')
    expect(fake.calls.at(-1)).toBe('ip link del dev mvbr7')
    expect(fake.calls.some((c) => c.startsWith('dnsmasq'))).toBe(false)
    expect((await host.inventory()).networks).toEqual([])
  })

  it('when the rules are refused, the dnsmasq it started is stopped and the devices removed', async () => {
    const fake = fakeHost(dir, (line) => line.startsWith('nft ') ? 'Error: syntax error' : undefined)
    const host = driver(fake)
    await expect(host.ensureNetwork(web)).rejects.toThrow('nft -f - failed: Error: syntax error')
    expect(fake.signals).toEqual(['SIGTERM 4000'])
    expect(fake.calls.filter((c) => c.startsWith('ip link del'))).toEqual(['ip link del dev mvvx7', 'ip link del dev mvbr7'])
    await expect(host.attachPort({ network: 'web', vmId: 'v', nicIndex: 0, mac: '02:00:00:00:00:01', ip: '10.7.0.5', hostname: 'v' })).rejects.toThrow('not on this host')
  })

  it('attachPort creates the tap once, HUPs dnsmasq for its entry, and adopts it the second time', async () => {
    const fake = fakeHost(dir)
    const host = driver(fake)
    await host.ensureNetwork(web)
    const port = { network: 'web', vmId: 'vm1', nicIndex: 0, mac: '02:00:00:00:00:01', ip: '10.7.0.5', hostname: 'www' }
    const { tap } = await host.attachPort(port)
    await host.attachPort(port)
    expect(fake.calls.filter((c) => c.startsWith('ip tuntap add'))).toEqual([`ip tuntap add dev ${tap} mode tap`])
    expect(fake.calls.filter((c) => c.startsWith(`ip link set dev ${tap}`))).toEqual([`ip link set dev ${tap} mtu 1450 master mvbr7 up`])
    expect(fake.signals).toEqual(['SIGHUP 4000'])
    expect(await readFile(join(dir, 'state/web/dhcp-hosts'), 'utf8')).toBe('02:00:00:00:00:01,10.7.0.5,www\n')
    await host.detachPort('web', 'vm1', 0)
    expect(fake.calls.at(-1)).toBe(`ip link del dev ${tap}`)
    expect(await readFile(join(dir, 'state/web/dhcp-hosts'), 'utf8')).toBe('')
  })

  it('refuses a state directory dnsmasq could not search, and leaves nothing behind', async () => {
    await chmod(dir, 0o700)
    const fake = fakeHost(dir)
    const err = await driver(fake).ensureNetwork(web).catch((e: unknown) => e)
    expect((err as Error).message).toBe(`${dir} is not searchable by other users (mode 700), so dnsmasq could not re-read its files under it after dropping root: chmod o+x ${dir} or use another stateDir`)
    expect(fake.calls.filter((c) => c.startsWith('ip link del'))).toEqual(['ip link del dev mvvx7', 'ip link del dev mvbr7'])
    expect(fake.calls.some((c) => c.startsWith('dnsmasq'))).toBe(false)
  })

  it('setPeers leaves out entries that point at this host itself', async () => {
    const fake = fakeHost(dir)
    const host = driver(fake)
    await host.ensureNetwork(web)
    const self = { mac: '02:00:00:00:00:05', ip: '10.7.0.5', hostname: 'me', underlay: '10.77.0.1' }
    const other = { mac: '02:00:00:00:00:06', ip: '10.7.0.6', hostname: 'you', underlay: '10.77.0.2' }
    await host.setPeers('web', { floodTo: ['10.77.0.1', '10.77.0.2'], nics: [self, other] })
    const batches = fake.calls.filter((c) => c.includes('-batch'))
    expect(batches).toEqual([
      'bridge -batch - <<fdb append 00:00:00:00:00:00 dev mvvx7 dst 10.77.0.2 self permanent\nfdb replace 02:00:00:00:00:06 dev mvvx7 dst 10.77.0.2 self dynamic\n',
      'ip -batch - <<neigh replace 10.7.0.6 lladdr 02:00:00:00:00:06 dev mvvx7 nud permanent\n'
    ])
    expect(await readFile(join(dir, 'state/web/dns-hosts'), 'utf8')).toBe('10.7.0.5 me\n10.7.0.6 you\n')
  })

  it('setPeers diffs against what it last wrote: a moved MAC is one command, no read-back; a failure or a re-ensure reads again', async () => {
    let failBatch = false
    const fake = fakeHost(dir, (line) => (failBatch && line.startsWith('bridge -batch') ? 'RTNETLINK answers: No buffer space available' : undefined))
    const host = driver(fake)
    await host.ensureNetwork(web)
    const nic = (underlay: string): { mac: string, ip: string, hostname: string, underlay: string } => ({ mac: '02:00:00:00:00:06', ip: '10.7.0.6', hostname: 'you', underlay })
    const reads = (): string[] => fake.calls.filter((c) => c.startsWith('bridge -j fdb') || c.startsWith('ip -j neigh'))
    await host.setPeers('web', { floodTo: ['10.77.0.2', '10.77.0.3'], nics: [nic('10.77.0.2')] })
    expect(reads()).toHaveLength(2) // the first pass reads the kernel's tables
    fake.calls.length = 0
    await host.setPeers('web', { floodTo: ['10.77.0.2', '10.77.0.3'], nics: [nic('10.77.0.3')] })
    expect(fake.calls.filter((c) => c.startsWith('bridge') || c.startsWith('ip -'))).toEqual(['bridge -batch - <<fdb replace 02:00:00:00:00:06 dev mvvx7 dst 10.77.0.3 self dynamic\n'])
    fake.calls.length = 0
    await host.setPeers('web', { floodTo: ['10.77.0.2', '10.77.0.3'], nics: [nic('10.77.0.3')] })
    expect(fake.calls.filter((c) => c.startsWith('bridge') || c.startsWith('ip -'))).toEqual([]) // nothing to do, nothing run

    failBatch = true
    await expect(host.setPeers('web', { floodTo: ['10.77.0.2'], nics: [nic('10.77.0.2')] })).rejects.toThrow(/No buffer space/)
    failBatch = false
    fake.calls.length = 0
    await host.setPeers('web', { floodTo: ['10.77.0.2'], nics: [nic('10.77.0.2')] })
    expect(reads()).toHaveLength(2) // after a failed command the kernel is asked again
    fake.calls.length = 0
    await host.ensureNetwork(web)
    await host.setPeers('web', { floodTo: ['10.77.0.2'], nics: [nic('10.77.0.2')] })
    expect(reads()).toHaveLength(2) // and after an ensure (the devices may have been re-made)
  })

  it('the periodic check restarts a dnsmasq that died, and stops on close', async () => {
    const fake = fakeHost(dir)
    const host = new LinuxHostNetwork({ underlay: '10.77.0.1', stateDir: join(dir, 'state'), run: fake.run, processes: fake.processes, procSys: join(dir, 'sys'), superviseIntervalMs: 20, uplink: 'eth0' })
    await host.ensureNetwork(web)
    await rm(join(dir, 'proc/4000'), { recursive: true })
    const deadline = Date.now() + 2000
    while (fake.calls.filter((c) => c.startsWith('dnsmasq')).length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    expect(fake.calls.filter((c) => c.startsWith('dnsmasq'))).toHaveLength(2)
    await host.close()
    const after = fake.calls.length
    await new Promise((resolve) => setTimeout(resolve, 60))
    expect(fake.calls.length).toBe(after)
  })
})
