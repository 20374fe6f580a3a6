import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureGuest, killQemusUnder, lastCounter, waitForSerial, type TestGuest, meshvirt, meshvirtOn, startAgentCluster, startAgentProcess, type AgentProcess, pollUntil } from '@meshvirt/testkit'

interface Holder { hostId: string, hostname: string, state: string, seq: number, takenAtMs: number, lagMs: number | null, sentBytes: number, lastError: string }
interface VmJson {
  id: string, name: string, owner: string, epoch: number, state: string
  replication?: { replicas: number, rpoMs: number, points: number, lastPauseMs: number, maxPauseMs: number, holders: Holder[] }
}

/** The guest's I/O is drained only for a point's QMP transaction; the owner reports the longest. */
const PAUSE_BOUND_MS = 1000
const RPO_MS = 4000

// Real agents as processes, real QEMU guests writing to their disks, replicas on other hosts'
// disks shipped through /meshvirt/replica/1.0.0, and the manual failover path.
describe('replication end to end: a real guest\'s disk kept on another host, and failover', () => {
  let dir: string
  let guest: TestGuest
  const agents: AgentProcess[] = []
  const argvOf: string[][] = []

  beforeAll(async () => {
    guest = await ensureGuest()
    dir = await mkdtemp(join(tmpdir(), 'mv-rep-'))
    await meshvirt(['cluster', 'init', '--out', join(dir, 'cluster.key')])
    const started = await startAgentCluster(dir, join(dir, 'cluster.key'), 3, (i) => ['--image-dir', guest.dir, '--label', `site=${'abc'[i - 1] ?? ''}`, '--replica-bandwidth', '4M'])
    agents.push(...started.agents)
    argvOf.push(...started.argvOf)
  }, 240_000)

  afterAll(async () => {
    await Promise.all(agents.map(async (a) => { await a.stop() }))
    for (const i of [1, 2, 3]) await killQemusUnder(join(dir, `host-${i}`))
    // A fence watchdog outliving its agent may write its last file meanwhile (ENOTEMPTY seen in CI): retried.
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 })
  })

  const cli = meshvirtOn
  const show = async (on: AgentProcess, name: string): Promise<VmJson> => JSON.parse(await cli(on, ['vm', 'show', name, '--json'])) as VmJson
  /** For a failure message: the VM as its owner shows it, and what owner and holder logged about replicas and leases. */
  const replicationStory = async (owner: AgentProcess, holder: AgentProcess, name: string): Promise<string> => {
    const shown = await cli(owner, ['vm', 'show', name]).catch((e: unknown) => `vm show failed: ${(e as Error).message}`)
    const lines = (a: AgentProcess): string => a.output().split('\n').filter((l) => /replica|replicat|lease|holder|fence|point/i.test(l)).slice(-25).join('\n')
    return `vm show ${name} on the owner:\n${shown}\nowner's log (replicas, leases):\n${lines(owner)}\nholder's log (replicas, leases):\n${lines(holder)}`
  }

  it('keeps the replica within 2 × RPO while the guest writes; after the owner dies, vm failover from another host runs the VM on the holder from the last point', async () => {
    const [h1, h2, h3] = agents as [AgentProcess, AgentProcess, AgentProcess]
    await pollUntil(async () => (JSON.parse(await cli(h3, ['host', 'ls', '--json'])) as unknown[]).length === 3, { timeoutMs: 20_000, what: 'host-3 to see 3 hosts' })
    const vm = JSON.parse(await cli(h3, ['vm', 'create', '--name', 'rep-1', '--memory', '128M', '--disk', '32M', '--host', 'host-1',
      '--replicas', '1', '--rpo', `${RPO_MS / 1000}s`, '--spread-by', 'site',
      '--kernel', guest.kernel, '--initrd', guest.initrd, '--cmdline', `${guest.cmdline} meshvirt.disk_kib=64`, '--json'])) as VmJson
    expect(vm.owner).toBe(h1.hostId)
    const serial = join(h1.dataDir, 'vms', vm.id, 'serial.log')
    await waitForSerial(serial, /MESHVIRT-COUNTER \d+/, 90_000)

    const synced = await pollUntil(async () => {
      const v = await show(h2, 'rep-1')
      return v.replication?.holders.length === 1 && v.replication.holders[0]?.state === 'in-sync' ? v : undefined
    }, { timeoutMs: 90_000, what: 'the replica in sync' })
    const holderId = synced.replication?.holders[0]?.hostId as string
    expect(holderId).not.toBe(h1.hostId)
    // The lag stays within 2 × RPO while the guest keeps writing (sampled for ~12 s).
    const lags: number[] = []
    for (let i = 0; i < 12; i++) {
      const v = await show(h3, 'rep-1')
      const lag = v.replication?.holders[0]?.lagMs
      expect(lag).not.toBeNull()
      lags.push(lag as number)
      await new Promise((resolve) => setTimeout(resolve, 1000))
    }
    console.log(`replica lag samples (ms): ${lags.map((l) => Math.round(l)).join(' ')}`)
    expect(Math.max(...lags)).toBeLessThanOrEqual(2 * RPO_MS)
    const shown = await cli(h2, ['vm', 'show', 'rep-1'])
    expect(shown).toMatch(/replicas:\s+1 wanted, RPO 4\.0 s, spread by site/)
    expect(shown).toMatch(/in-sync\s+point \d+, lag/)
    const stats = (await show(h1, 'rep-1')).replication
    console.log(`guest pause per point: last ${stats?.lastPauseMs.toFixed(1)} ms, max ${stats?.maxPauseMs.toFixed(1)} ms over ${stats?.points} points`)
    expect(stats?.maxPauseMs).toBeLessThanOrEqual(PAUSE_BOUND_MS)

    // Refused while the owner lives.
    const refused = await meshvirt(['vm', 'failover', 'rep-1', '--data-dir', h3.dataDir])
    expect(refused.exitCode).not.toBe(0)
    expect(refused.stderr).toMatch(/only for a dead owner/)

    // A counter value surely in a replicated point: one printed before a point the holder applied.
    const known = await lastCounter(serial)
    const knownAt = Date.now()
    await pollUntil(async () => ((await show(h1, 'rep-1')).replication?.holders[0]?.takenAtMs ?? 0) > knownAt + 300, { timeoutMs: 30_000, what: 'a point taken after the known counter' })

    // The owner host dies: its agent and its QEMU.
    await h1.kill9()
    await killQemusUnder(h1.dataDir)
    const holder = agents.find((a) => a.hostId === holderId) as AgentProcess
    const other = [h2, h3].find((a) => a.hostId !== holderId) as AgentProcess
    await pollUntil(async () => {
      const hosts = JSON.parse(await cli(other, ['host', 'ls', '--json'])) as Array<{ hostId: string, liveness: string }>
      return hosts.find((h) => h.hostId === h1.hostId)?.liveness === 'dead'
    }, { timeoutMs: 30_000, what: 'host-1 seen dead' })
    // The manual path races the lease: with three hosts the group (owner + holder) has a witness, so
    // the holder may already have been elected by the time `vm failover` is typed. Either way the VM
    // must run on the holder at epoch 2 from its last point; which path did it is printed.
    const t0 = Date.now()
    const manual = await meshvirt(['vm', 'failover', 'rep-1', '--json', '--data-dir', other.dataDir])
    let failed: VmJson
    if (manual.exitCode === 0) {
      failed = JSON.parse(manual.stdout) as VmJson
      console.log(`vm failover (the manual path) returned after ${Date.now() - t0} ms`)
    } else {
      expect(manual.stderr, 'vm failover refused for any reason but an election already won by the holder').toMatch(new RegExp(`rep-1 runs on ${holder === h2 ? 'host-2' : 'host-3'}, which is alive`))
      failed = await pollUntil(async () => { const v = await show(other, 'rep-1'); return v.state === 'running' ? v : undefined }, { timeoutMs: 30_000, what: 'the elected holder to run rep-1' })
      console.log(`vm failover refused after ${Date.now() - t0} ms: the lease had already elected the holder`)
    }
    expect(failed).toMatchObject({ id: vm.id, owner: holderId, epoch: 2, state: 'running' })
    const newSerial = join(holder.dataDir, 'vms', vm.id, 'serial.log')
    const found = await waitForSerial(newSerial, /MESHVIRT-DISK (\d+)/, 90_000)
    console.log(`counter known replicated ${known}; read from the disk on the holder ${found[1]}`)
    expect(Number(found[1])).toBeGreaterThanOrEqual(known)
    await waitForSerial(newSerial, /MESHVIRT-COUNTER \d+/, 30_000)
    // The one live host left (the other site) becomes the new holder, at epoch 2.
    await pollUntil(async () => {
      const v = await show(other, 'rep-1')
      return v.owner === holderId && v.replication?.holders.some((h) => h.hostId === other.hostId && h.state === 'in-sync') === true
    }, { timeoutMs: 90_000, what: 'replication to continue from the new owner' })
    await cli(other, ['vm', 'delete', 'rep-1'])
    await pollUntil(async () => await stat(join(other.dataDir, 'replicas', vm.id)).then(() => false, () => true), { timeoutMs: 20_000, what: 'the replica removed with the VM' })

    // host-1 comes back for the next test (its VM is gone: it owned it at epoch 1, it runs nothing).
    agents[0] = await startAgentProcess(argvOf[0] as string[], { dataDir: h1.dataDir })
  }, 400_000)

  it('a holder killed during the first full copy: the copy resumes after it restarts and the replica converges', async () => {
    // The previous case restarts host-1 at its end; if it failed before, this one still runs on three hosts.
    const first = agents[0] as AgentProcess
    if (first.child.exitCode !== null || first.child.signalCode !== null) agents[0] = await startAgentProcess(argvOf[0] as string[], { dataDir: first.dataDir })
    const [h1, h2, h3] = agents as [AgentProcess, AgentProcess, AgentProcess]
    await pollUntil(async () => (JSON.parse(await cli(h1, ['host', 'ls', '--json'])) as Array<{ liveness: string }>).filter((h) => h.liveness === 'alive').length === 3, { timeoutMs: 30_000, what: 'host-1 back in the cluster' })
    // The guest fills its disk (1 MiB per 200 ms tick) before replication starts: a big first copy at 4 MiB/s.
    const vm = JSON.parse(await cli(h2, ['vm', 'create', '--name', 'rep-2', '--memory', '128M', '--disk', '40M', '--host', 'host-1',
      '--kernel', guest.kernel, '--initrd', guest.initrd, '--cmdline', `${guest.cmdline} meshvirt.disk_kib=256`, '--json'])) as VmJson
    const serial = join(h1.dataDir, 'vms', vm.id, 'serial.log')
    await waitForSerial(serial, /MESHVIRT-COUNTER \d+/, 90_000)
    await pollUntil(async () => await lastCounter(serial) >= 60, { timeoutMs: 120_000, what: 'the guest to write its disk' })
    await cli(h3, ['vm', 'replicate', 'rep-2', '--replicas', '1', '--rpo', '4s'])
    const holderId = await pollUntil(async () => (await show(h1, 'rep-2')).replication?.holders[0]?.hostId, { timeoutMs: 30_000, what: 'a holder placed' })
    const index = agents.findIndex((a) => a.hostId === holderId)
    const holder = agents[index] as AgentProcess
    const partial = join(holder.dataDir, 'replicas', vm.id, 'incoming.part')
    await pollUntil(async () => ((await stat(partial).catch(() => undefined))?.size ?? 0) > 4 * 2 ** 20, { timeoutMs: 60_000, intervalMs: 50, what: 'the first copy under way on the holder' })
      .catch(async (err: unknown) => { throw new Error(`${(err as Error).message}\n${await replicationStory(h1, holder, 'rep-2')}`) })
    const partialBytes = (await stat(partial)).size
    await holder.kill9()
    const again = await startAgentProcess(argvOf[index] as string[], { dataDir: holder.dataDir })
    agents[index] = again
    const converged = await pollUntil(async () => {
      const v = await show(h1, 'rep-2')
      return v.replication?.holders[0]?.state === 'in-sync' ? v : undefined
    }, { timeoutMs: 120_000, what: 'the replica to converge after the holder restarted' })
    expect(converged.replication?.holders[0]?.hostId).toBe(holderId)
    console.log(`holder killed with ${partialBytes} bytes of the first point received; converged, guest pause max ${converged.replication?.maxPauseMs.toFixed(1)} ms`)
    expect(converged.replication?.maxPauseMs).toBeLessThanOrEqual(PAUSE_BOUND_MS)
    await cli(h2, ['vm', 'delete', 'rep-2'])
  }, 400_000)

  it('a stopped replicated VM moves cold with its holder and lease, starts there from its disk, and replication goes on', async () => {
    const first = agents[0] as AgentProcess
    if (first.child.exitCode !== null || first.child.signalCode !== null) agents[0] = await startAgentProcess(argvOf[0] as string[], { dataDir: first.dataDir })
    const [h1, h2, h3] = agents as [AgentProcess, AgentProcess, AgentProcess]
    await pollUntil(async () => (JSON.parse(await cli(h1, ['host', 'ls', '--json'])) as Array<{ liveness: string }>).filter((h) => h.liveness === 'alive').length === 3, { timeoutMs: 30_000, what: 'all three hosts alive' })
    const vm = JSON.parse(await cli(h3, ['vm', 'create', '--name', 'rep-3', '--memory', '128M', '--disk', '32M', '--host', 'host-1',
      '--replicas', '1', '--rpo', `${RPO_MS / 1000}s`, '--spread-by', 'site',
      '--kernel', guest.kernel, '--initrd', guest.initrd, '--cmdline', `${guest.cmdline} meshvirt.disk_kib=64`, '--json'])) as VmJson
    const serial = join(h1.dataDir, 'vms', vm.id, 'serial.log')
    await waitForSerial(serial, /MESHVIRT-COUNTER \d+/, 90_000)
    const holderId = await pollUntil(async () => (await show(h1, 'rep-3')).replication?.holders.find((h) => h.state === 'in-sync')?.hostId, { timeoutMs: 90_000, what: 'a holder in sync' })
    expect(await cli(h2, ['vm', 'stop', 'rep-3'])).toMatch(/rep-3 is stopped/)
    const written = await lastCounter(serial)
    const dest = [h2, h3].find((a) => a.hostId !== holderId) as AgentProcess
    const moved = JSON.parse(await cli(h3, ['vm', 'migrate', 'rep-3', '--to', dest === h2 ? 'host-2' : 'host-3', '--json'])) as VmJson
    expect(moved).toMatchObject({ owner: dest.hostId, epoch: 2, state: 'stopped' })
    expect(await cli(h1, ['vm', 'start', 'rep-3'])).toMatch(/rep-3 is running/)
    // It boots on the destination from the disk that came over (the counter it keeps there).
    const found = await waitForSerial(join(dest.dataDir, 'vms', vm.id, 'serial.log'), /MESHVIRT-DISK (\d+)/, 90_000)
    expect(Number(found[1])).toBeGreaterThanOrEqual(written - 1)
    // The same holder follows the new owner.
    await pollUntil(async () => {
      const v = await show(dest, 'rep-3')
      return v.replication?.holders.some((h) => h.hostId === holderId && h.state === 'in-sync' && h.takenAtMs > Date.now() - 60_000) === true
    }, { timeoutMs: 90_000, what: 'the holder in sync with the new owner' })
      .catch(async (err: unknown) => { throw new Error(`${(err as Error).message}\n${await replicationStory(dest, agents.find((a) => a.hostId === holderId) as AgentProcess, 'rep-3')}`) })
    await cli(h2, ['vm', 'delete', 'rep-3'])
  }, 400_000)
})
