import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, readdir, readlink, rm, stat } from 'node:fs/promises'
import { connect as tcpConnect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ensureGuest, isRunning, killQemusUnder, lastCounter, waitForSerial, type TestGuest, MESHVIRT_BIN, keepAgentLogs, meshvirt, meshvirtOn, startAgentCluster, startAgentProcess, type AgentProcess, pollUntil } from '@meshvirt/testkit'

interface VmJson { id: string, name: string, owner: string, epoch: number, state: string, lastMigration?: { downtimeMs: number, pauseMs: number, totalMs: number, error: string, path: string, channels: number, throughputMBs: number } }

/** TCP ports a process listens on (its socket inodes in /proc/PID/fd, matched in /proc/net/tcp{,6} in state LISTEN). */
async function listeningPorts (pid: number): Promise<number[]> {
  const inodes = new Set<string>()
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''))
    if (m !== null) inodes.add(m[1] as string)
  }
  const ports: number[] = []
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of (await readFile(table, 'utf8').catch(() => '')).split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      if (f[3] === '0A' && inodes.has(f[9] as string)) ports.push(Number.parseInt((f[1] as string).split(':')[1] as string, 16))
    }
  }
  return ports
}

/** A third party on a port: a plaintext client and a TLS-PSK client with a wrong key. Whether either got a TLS session or any byte. */
async function intrude (port: number): Promise<{ plainBytes: number, plainClosed: boolean, tlsHandshook: boolean }> {
  const plain = await new Promise<{ bytes: number, closed: boolean }>((resolve) => {
    let bytes = 0
    const s = tcpConnect(port, '127.0.0.1', () => { s.write('QEVM\0\0\0\x03 let me in\r\n') })
    const timer = setTimeout(() => { s.destroy(); resolve({ bytes, closed: false }) }, 10_000)
    s.on('data', (d: Buffer) => { bytes += d.length })
    s.on('error', () => {})
    s.on('close', () => { clearTimeout(timer); resolve({ bytes, closed: true }) })
  })
  const tlsHandshook = await new Promise<boolean>((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, maxVersion: 'TLSv1.2', ciphers: 'PSK-AES256-GCM-SHA384:PSK-AES128-GCM-SHA256', checkServerIdentity: () => undefined, pskCallback: () => ({ identity: 'meshvirt', psk: randomBytes(32) }) })
    const timer = setTimeout(() => { s.destroy(); resolve(false) }, 10_000)
    s.on('secureConnect', () => { clearTimeout(timer); s.destroy(); resolve(true) })
    s.on('error', () => { clearTimeout(timer); s.destroy(); resolve(false) })
  })
  return { plainBytes: plain.bytes, plainClosed: plain.closed, tlsHandshook }
}

// Real agents as processes, a real QEMU guest with a local disk, moved between them through the
// mesh: RAM and the disk mirror (NBD) both travel in libp2p streams (encrypted, cluster key).
describe('live migration end to end: a real guest moves between agent processes', () => {
  let dir: string
  let guest: TestGuest
  const agents: AgentProcess[] = []
  const argvOf: string[][] = []

  beforeAll(async () => {
    guest = await ensureGuest()
    dir = await mkdtemp(join(tmpdir(), 'mv-mig-'))
    await meshvirt(['cluster', 'init', '--out', join(dir, 'cluster.key')])
    const started = await startAgentCluster(dir, join(dir, 'cluster.key'), 3, () => ['--image-dir', guest.dir])
    agents.push(...started.agents)
    argvOf.push(...started.argvOf)
  }, 240_000)

  afterAll(async () => {
    await Promise.all(agents.map(async (a) => { await a.stop() }))
    for (const i of [1, 2, 3]) await killQemusUnder(join(dir, `host-${i}`))
    await rm(dir, { recursive: true, force: true })
  })

  const cli = meshvirtOn

  // A test that failed half-way must not leave its VM to the next one (whose ledger checks expect none).
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail') console.error(await keepAgentLogs(agents, 'vm-migration'))
    const h3 = agents[2] as AgentProcess
    const left = JSON.parse(await cli(h3, ['vm', 'ls', '--json']).catch(() => '[]')) as VmJson[]
    for (const vm of left) await cli(h3, ['vm', 'delete', vm.name]).catch(() => {})
  })

  it('keeps the guest running, its memory and its disk, and hands ownership over with epoch + 1', async () => {
    const [h1, h2, h3] = agents as [AgentProcess, AgentProcess, AgentProcess]
    await pollUntil(async () => (JSON.parse(await cli(h3, ['host', 'ls', '--json'])) as unknown[]).length === 3, { timeoutMs: 20_000, what: 'host-3 to see 3 hosts' })
    const vm = JSON.parse(await cli(h3, ['vm', 'create', '--name', 'mig-1', '--memory', '128M', '--disk', '32M', '--host', 'host-1',
      '--kernel', guest.kernel, '--initrd', guest.initrd, '--cmdline', `${guest.cmdline} meshvirt.disk_kib=64`, '--json'])) as VmJson
    expect(vm.owner).toBe(h1.hostId)
    const sourceSerial = join(h1.dataDir, 'vms', vm.id, 'serial.log')
    await waitForSerial(sourceSerial, /MESHVIRT-COUNTER \d+/, 90_000)
    await pollUntil(async () => await lastCounter(sourceSerial) >= 5, { timeoutMs: 30_000, what: 'the guest to count' })

    // Asked of host-3; the owner (host-1) negotiates with host-2.
    const moved = JSON.parse(await cli(h3, ['vm', 'migrate', 'mig-1', '--to', 'host-2', '--json'])) as VmJson
    expect(moved).toMatchObject({ id: vm.id, owner: h2.hostId, epoch: 2, state: 'running' })
    expect(moved.lastMigration?.error).toBe('')
    // The default path: QEMU to QEMU over TLS (auto: host-2's address answers).
    expect(moved.lastMigration).toMatchObject({ path: 'direct-tls', channels: 2 })
    expect(moved.lastMigration?.throughputMBs).toBeGreaterThan(0)
    expect(moved.lastMigration?.downtimeMs).toBeGreaterThan(0)
    // The guest's pause, source STOP → destination RESUME: QEMU's downtime and then some (the mirror's
    // completion, the hand-over). Slack: both stamps are whole ms, and QEMU starts its downtime clock
    // a moment before it emits STOP (once every vCPU has paused).
    expect(moved.lastMigration?.pauseMs).toBeGreaterThanOrEqual((moved.lastMigration?.downtimeMs ?? 0) - 2)
    expect(moved.lastMigration?.pauseMs).toBeGreaterThan(0)
    expect(moved.lastMigration?.pauseMs).toBeLessThan(5000)
    const before = await lastCounter(sourceSerial)

    // The guest did not reboot: its counter continues on host-2 from where host-1 left it.
    const destSerial = join(h2.dataDir, 'vms', vm.id, 'serial.log')
    const after = await pollUntil(async () => { const n = await lastCounter(destSerial); return n > before ? n : undefined }, { timeoutMs: 30_000, what: 'the counter to continue on host-2' })
    expect(after).toBeGreaterThan(before)
    // …and it does not reboot a moment later either (a guest whose memory arrived damaged panics,
    // and the test guest reboots on panic): the log says why, should it ever happen.
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const destLog = await readFile(destSerial, 'utf8')
    expect(destLog, `the guest rebooted on host-2 (its serial log, from the migration on):\n${destLog.slice(-8000)}`).not.toMatch(/MESHVIRT-READY/)
    // The source copy is gone; every host lists the VM once, on host-2, epoch 2.
    await expect(stat(join(h1.dataDir, 'vms', vm.id))).rejects.toThrow()
    for (const a of agents) {
      await pollUntil(async () => {
        const list = JSON.parse(await cli(a, ['vm', 'ls', '--json'])) as VmJson[]
        const mine = list.filter((v) => v.id === vm.id)
        return mine.length === 1 && mine[0]?.owner === h2.hostId && mine[0]?.epoch === 2
      }, { timeoutMs: 15_000, what: 'vm ls to show the VM once, on host-2' })
    }
    expect(await cli(h1, ['vm', 'show', 'mig-1'])).toMatch(/migrated:\s+host-1 → host-2 .* downtime \d+ ms, pause \d+ ms, total \d+ ms, via direct-tls \(2 channels, auto: 127\.0\.0\.1 reachable\), RAM at \d+ MB\/s/)
    // The one-time key lived in the VM dir only while the migration did.
    await expect(stat(join(h2.dataDir, 'vms', vm.id, 'tls-in'))).rejects.toMatchObject({ code: 'ENOENT' })

    // The disk came along: reboot the guest on host-2 and it finds the counter it kept on /dev/vda.
    await cli(h1, ['vm', 'stop', 'mig-1'])
    const size = (await stat(destSerial)).size
    await cli(h1, ['vm', 'start', 'mig-1'])
    const found = await waitForSerial(destSerial, /MESHVIRT-DISK (\d+)/, 90_000, size)
    expect(Number(found[1])).toBeGreaterThanOrEqual(before)
    await cli(h2, ['vm', 'delete', 'mig-1'])
  }, 300_000)

  it('the destination agent killed mid-migration: the VM runs on at the source, nothing is left at the destination, and a second migration succeeds', async () => {
    const [h1, , h3] = agents as [AgentProcess, AgentProcess, AgentProcess]
    // A guest rewriting 4 MiB every 200 ms, migrated at 1 MiB/s: it cannot converge, which
    // leaves a wide window to kill the destination while RAM is being sent.
    const vm = JSON.parse(await cli(h3, ['vm', 'create', '--name', 'mig-2', '--memory', '128M', '--disk', '32M', '--host', 'host-1',
      '--kernel', guest.kernel, '--initrd', guest.initrd, '--cmdline', `${guest.cmdline} meshvirt.dirty_kib=4096`, '--json'])) as VmJson
    const sourceSerial = join(h1.dataDir, 'vms', vm.id, 'serial.log')
    await waitForSerial(sourceSerial, /MESHVIRT-COUNTER \d+/, 90_000)

    const migrating = spawn('node', [MESHVIRT_BIN, 'vm', 'migrate', 'mig-2', '--to', 'host-2', '--bandwidth', '1M', '--timeout', '120', '--data-dir', h3.dataDir], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    migrating.stdout.on('data', (d: Buffer) => { out += d.toString() })
    migrating.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const finished = new Promise<number>((resolve) => { migrating.once('exit', (code) => { resolve(code ?? -1) }) })
    try {
      const h2 = agents[1] as AgentProcess
      await pollUntil(async () => /ram/.test(out), { timeoutMs: 60_000, what: 'the migration to be sending RAM' })
      await h2.kill9()
      expect(await finished).toBe(1)
      expect(out).toMatch(/migration of mig-2 failed, it keeps running on this host/)
    } finally {
      if (migrating.exitCode === null) migrating.kill('SIGKILL')
    }
    // The guest never stopped counting on host-1.
    const before = await lastCounter(sourceSerial)
    await pollUntil(async () => await lastCounter(sourceSerial) > before, { timeoutMs: 10_000, what: 'the guest to keep counting on host-1' })

    // host-2 restarts: its half-received copy is gone and it holds nothing for the VM.
    const h2 = await startAgentProcess(argvOf[1] as string[], { dataDir: agents[1]!.dataDir })
    agents[1] = h2
    await pollUntil(async () => await stat(join(h2.dataDir, 'vms', vm.id)).then(() => false, () => true), { timeoutMs: 20_000, what: 'the incoming copy removed on host-2' })
    const hosts = JSON.parse(await cli(h2, ['host', 'ls', '--json'])) as Array<{ hostId: string, incarnation: number, allocated: { memoryBytes: number }, reservations: { memoryBytes: number } }>
    expect(hosts.find((h) => h.hostId === h2.hostId)).toMatchObject({ allocated: { memoryBytes: 0 }, reservations: { memoryBytes: 0 } })
    const listed = (JSON.parse(await cli(h3, ['vm', 'ls', '--json'])) as VmJson[]).filter((v) => v.id === vm.id)
    expect(listed).toMatchObject([{ owner: h1.hostId, epoch: 1, state: 'running' }])

    // A second migration, at full speed, succeeds — through the mesh tunnel this time, so that path stays tested end to end.
    // Alive in its new incarnation: killed and back within a detection time, host-2 may never have
    // looked dead to host-1, whose view then still held the old process's advert.
    const restarted = hosts.find((h) => h.hostId === h2.hostId)?.incarnation
    expect(restarted).toBeGreaterThan(0)
    await pollUntil(async () => (JSON.parse(await cli(h1, ['host', 'ls', '--json'])) as Array<{ hostId: string, liveness: string, incarnation: number }>)
      .some((h) => h.hostId === h2.hostId && h.liveness === 'alive' && h.incarnation === restarted),
    { timeoutMs: 30_000, what: 'host-1 to see host-2 alive again, in its new incarnation' })
    // The guest still rewrites 4 MiB every 200 ms (~28 MB/s dirty, measured with query-migrate):
    // under the 10 ms default QEMU switches over only once auto-converge has throttled it to
    // 80-99 %, 20 s here on a quiet machine and over the CLI's minute in CI beside other suites'
    // guests. What this case checks is that the killed attempt left nothing in the way, so it
    // allows the pause such a guest needs (~330 ms expected) rather than a race with the load.
    const moved = JSON.parse(await cli(h3, ['vm', 'migrate', 'mig-2', '--to', 'host-2', '--via', 'mesh', '--downtime-ms', '2000', '--json'])) as VmJson
    expect(moved).toMatchObject({ owner: h2.hostId, epoch: 2, state: 'running' })
    expect(moved.lastMigration).toMatchObject({ path: 'mesh', error: '' })
    await cli(h3, ['vm', 'delete', 'mig-2'])
  }, 300_000)

  it('direct TLS: a third process on the destination\'s migration and NBD ports gets nothing, and the migration still succeeds', async () => {
    const [h1, h2, h3] = agents as [AgentProcess, AgentProcess, AgentProcess]
    const vm = JSON.parse(await cli(h3, ['vm', 'create', '--name', 'mig-3', '--memory', '128M', '--disk', '32M', '--host', 'host-1',
      '--kernel', guest.kernel, '--initrd', guest.initrd, '--cmdline', guest.cmdline, '--json'])) as VmJson
    await waitForSerial(join(h1.dataDir, 'vms', vm.id, 'serial.log'), /MESHVIRT-COUNTER \d+/, 90_000)
    await pollUntil(async () => (JSON.parse(await cli(h1, ['host', 'ls', '--json'])) as Array<{ hostId: string, liveness: string }>).find((h) => h.hostId === h2.hostId)?.liveness === 'alive',
      { timeoutMs: 30_000, what: 'host-1 to see host-2 alive' })
    // 8 MiB/s keeps the (idle) guest's RAM phase going for seconds while the intruders knock.
    const migrating = spawn('node', [MESHVIRT_BIN, 'vm', 'migrate', 'mig-3', '--to', 'host-2', '--via', 'direct', '--bandwidth', '8M', '--timeout', '120', '--json', '--data-dir', h3.dataDir], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    migrating.stdout.on('data', (d: Buffer) => { out += d.toString() })
    migrating.stderr.on('data', (d: Buffer) => { err += d.toString() })
    const finished = new Promise<number>((resolve) => { migrating.once('exit', (code) => { resolve(code ?? -1) }) })
    try {
      const pidFile = join(h2.dataDir, 'vms', vm.id, 'qemu.pid')
      const ports = await pollUntil(async () => {
        const pid = Number.parseInt(await readFile(pidFile, 'utf8').catch(() => ''), 10)
        if (!Number.isInteger(pid)) return undefined
        const p = await listeningPorts(pid)
        return p.length >= 2 ? p : undefined
      }, { timeoutMs: 60_000, what: 'the incoming QEMU on host-2 to listen on its migration and NBD ports' })
      for (const port of ports) {
        const got = await intrude(port)
        expect(got, `intruder on port ${port}`).toMatchObject({ plainClosed: true, tlsHandshook: false })
      }
      expect(await finished, err).toBe(0)
    } finally {
      if (migrating.exitCode === null) migrating.kill('SIGKILL')
    }
    const moved = JSON.parse(out) as VmJson
    expect(moved).toMatchObject({ owner: h2.hostId, epoch: 2, state: 'running' })
    expect(moved.lastMigration).toMatchObject({ path: 'direct-tls', error: '' })
    const destSerial = join(h2.dataDir, 'vms', vm.id, 'serial.log')
    const n = await lastCounter(destSerial)
    await pollUntil(async () => await lastCounter(destSerial) > n, { timeoutMs: 15_000, what: 'the guest to count on host-2' })
    await cli(h3, ['vm', 'delete', 'mig-3'])
  }, 300_000)

  it('a stopped VM migrates cold (its disk and ownership, no guest runs); a drain empties a host of running and stopped VMs', async () => {
    const [h1, h2, h3] = agents as [AgentProcess, AgentProcess, AgentProcess]
    const create = async (name: string, host: string): Promise<VmJson> => JSON.parse(await cli(h3, ['vm', 'create', '--name', name, '--memory', '128M', '--disk', '32M', '--host', host,
      '--kernel', guest.kernel, '--initrd', guest.initrd, '--cmdline', `${guest.cmdline} meshvirt.disk_kib=64`, '--json'])) as VmJson
    const vm = await create('cold-1', 'host-1')
    const serial1 = join(h1.dataDir, 'vms', vm.id, 'serial.log')
    await waitForSerial(serial1, /MESHVIRT-COUNTER \d+/, 90_000)
    await pollUntil(async () => await lastCounter(serial1) >= 3, { timeoutMs: 30_000, what: 'the guest to count' })
    expect(await cli(h3, ['vm', 'stop', 'cold-1'])).toMatch(/cold-1 is stopped/)
    // The guest prints a count, then writes it to its disk (fsync): the disk holds this or the one before.
    const counted = await lastCounter(serial1)

    const moved = JSON.parse(await cli(h3, ['vm', 'migrate', 'cold-1', '--to', 'host-2', '--json'])) as VmJson
    expect(moved).toMatchObject({ id: vm.id, owner: h2.hostId, epoch: 2, state: 'stopped' })
    expect(moved.lastMigration?.error).toBe('')
    await expect(stat(join(h1.dataDir, 'vms', vm.id))).rejects.toThrow()
    // It arrived stopped: the QEMU that took its disk quit.
    const pid = Number.parseInt(await readFile(join(h2.dataDir, 'vms', vm.id, 'qemu.pid'), 'utf8').catch(() => ''), 10)
    expect(Number.isInteger(pid) && await isRunning(pid), 'no QEMU runs the moved VM').toBe(false)
    // The guest never ran on the way: nothing after the stop in its serial log on host-2.
    const serial2 = join(h2.dataDir, 'vms', vm.id, 'serial.log')
    const size = await stat(serial2).then((s) => s.size, () => 0)
    expect(await readFile(serial2, 'utf8').catch(() => '')).not.toMatch(/MESHVIRT-COUNTER/)
    // The disk came along: started on host-2, the guest finds its counter on /dev/vda.
    expect(await cli(h3, ['vm', 'start', 'cold-1'])).toMatch(/cold-1 is running/)
    const found = await waitForSerial(serial2, /MESHVIRT-DISK (\d+)/, 90_000, size)
    expect(Number(found[1])).toBeGreaterThanOrEqual(Math.max(1, counted - 1))

    // Maintenance of host-2 with a stopped VM and a running one on it: both leave, the host is empty.
    expect(await cli(h3, ['vm', 'stop', 'cold-1'])).toMatch(/cold-1 is stopped/)
    const warm = await create('warm-1', 'host-2')
    await waitForSerial(join(h2.dataDir, 'vms', warm.id, 'serial.log'), /MESHVIRT-COUNTER \d+/, 90_000)
    const report = JSON.parse(await cli(h3, ['host', 'drain', 'host-2', '--json'])) as { state: string, vms: Array<{ name: string, toHost: string, error?: string }> }
    expect(report.state).toBe('drained')
    expect(report.vms.map((m) => [m.name, m.error ?? '']).sort()).toEqual([['cold-1', ''], ['warm-1', '']])
    const listed = JSON.parse(await cli(h3, ['vm', 'ls', '--json'])) as VmJson[]
    expect(listed.filter((v) => v.owner === h2.hostId)).toEqual([])
    expect(listed.find((v) => v.name === 'cold-1')).toMatchObject({ state: 'stopped', epoch: 3 })
    expect(listed.find((v) => v.name === 'warm-1')).toMatchObject({ state: 'running', epoch: 2 })
    expect(await cli(h3, ['host', 'undrain', 'host-2'])).toMatch(/host-2 is active/)
  }, 300_000)
})
