import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { meshvirt, startAgentProcess, type AgentProcess, pollUntil } from '@meshvirt/testkit'

interface HostJson { hostId: string, hostname: string, liveness: string, labels: Record<string, string>, self: boolean, incarnation: number }

describe('meshvirt agent processes form a mesh (CLI end to end)', () => {
  let dir: string
  let agents: AgentProcess[] = []

  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'mv-e2e-')) })
  afterEach(async () => {
    await Promise.all(agents.map(async (a) => { await a.stop() }))
    agents = []
    await rm(dir, { recursive: true, force: true })
  })

  async function hostsSeenBy (agent: AgentProcess): Promise<HostJson[]> {
    const r = await meshvirt(['host', 'ls', '--json', '--data-dir', agent.dataDir])
    if (r.exitCode !== 0) throw new Error(r.stderr)
    return JSON.parse(r.stdout) as HostJson[]
  }

  it('three agents joined through one bootstrap address all list each other', async () => {
    const key = join(dir, 'cluster.key')
    const init = await meshvirt(['cluster', 'init', '--out', key])
    expect(init.exitCode).toBe(0)
    expect((await stat(key)).mode & 0o777).toBe(0o600)

    const first = await startAgentProcess(['--name', 'host-1', '-l', '/ip4/127.0.0.1/tcp/0', '-k', key, '--label', 'zone=a'], { dataDir: join(dir, 'h1') })
    agents.push(first)
    for (const i of [2, 3]) {
      agents.push(await startAgentProcess(['--name', `host-${i}`, '-l', '/ip4/127.0.0.1/tcp/0', '-k', key, '--label', `zone=${i === 2 ? 'b' : 'c'}`, '--bootstrap', first.addr], { dataDir: join(dir, `h${i}`) }))
    }

    for (const agent of agents) {
      const hosts = await pollUntil(async () => {
        const hs = await hostsSeenBy(agent)
        return hs.length === 3 && hs.every((h) => h.liveness === 'alive') ? hs : undefined
      }, { timeoutMs: 15_000, what: `${agent.hostId} to see 3 alive hosts` })
      expect(hosts.map((h) => h.hostname).sort()).toEqual(['host-1', 'host-2', 'host-3'])
      expect(hosts.find((h) => h.self)?.hostId).toBe(agent.hostId)
      expect(hosts.find((h) => h.hostname === 'host-2')?.labels).toEqual({ zone: 'b' })
    }
  })

  it('an agent with another cluster key cannot join', async () => {
    await meshvirt(['cluster', 'init', '--out', join(dir, 'k1')])
    await meshvirt(['cluster', 'init', '--out', join(dir, 'k2')])
    const a = await startAgentProcess(['--name', 'a', '-l', '/ip4/127.0.0.1/tcp/0', '-k', join(dir, 'k1')], { dataDir: join(dir, 'a') })
    agents.push(a)
    const b = await startAgentProcess(['--name', 'b', '-l', '/ip4/127.0.0.1/tcp/0', '-k', join(dir, 'k2'), '--bootstrap', a.addr], { dataDir: join(dir, 'b') })
    agents.push(b)
    const c = await startAgentProcess(['--name', 'c', '-l', '/ip4/127.0.0.1/tcp/0', '-k', join(dir, 'k1'), '--bootstrap', a.addr], { dataDir: join(dir, 'c') })
    agents.push(c)
    // c (same key) joining a proves the bootstrap path works; b (other key) must stay alone.
    await pollUntil(async () => (await hostsSeenBy(a)).length === 2, { timeoutMs: 15_000, what: 'a to see c' })
    expect((await hostsSeenBy(a)).map((h) => h.hostname).sort()).toEqual(['a', 'c'])
    expect((await hostsSeenBy(b)).map((h) => h.hostname)).toEqual(['b'])
  })

  it('a restarted agent keeps its host id and comes back with a new incarnation', async () => {
    const key = join(dir, 'cluster.key')
    await meshvirt(['cluster', 'init', '--out', key])
    const a = await startAgentProcess(['--name', 'a', '-l', '/ip4/127.0.0.1/tcp/0', '-k', key], { dataDir: join(dir, 'a') })
    agents.push(a)
    const bArgs = ['--name', 'b', '-l', '/ip4/127.0.0.1/tcp/0', '-k', key, '--bootstrap', a.addr]
    const b1 = await startAgentProcess(bArgs, { dataDir: join(dir, 'b') })
    const seenB = async (): Promise<HostJson | undefined> => (await hostsSeenBy(a)).find((h) => h.hostname === 'b')
    const first = await pollUntil(async () => await seenB(), { timeoutMs: 15_000, what: 'a to see b' })
    await b1.stop()
    const b2 = await startAgentProcess(bArgs, { dataDir: join(dir, 'b') })
    agents.push(b2)
    expect(b2.hostId).toBe(b1.hostId)
    const again = await pollUntil(async () => {
      const h = await seenB()
      return h !== undefined && h.incarnation > first.incarnation && h.liveness === 'alive' ? h : undefined
    }, { timeoutMs: 15_000, what: 'a to see b back with a new incarnation' })
    expect(again.hostId).toBe(first.hostId)
  })

  it('CLI errors are clear: no agent, bad flags, unknown command', async () => {
    const noAgent = await meshvirt(['host', 'ls', '--data-dir', join(dir, 'nothing')])
    expect(noAgent.exitCode).toBe(1)
    expect(noAgent.stderr).toMatch(/no agent is listening/)
    const badFlag = await meshvirt(['host', 'ls', '--bogus'])
    expect(badFlag.exitCode).toBe(2)
    expect(badFlag.stderr).toMatch(/usage: meshvirt host ls/)
    const unknown = await meshvirt(['hots', 'ls'])
    expect(unknown.exitCode).toBe(2)
    expect(unknown.stderr).toMatch(/unknown command 'hots'/)
    const badLabel = await meshvirt(['agent', '--data-dir', join(dir, 'x'), '--label', 'nokey'])
    expect(badLabel.exitCode).toBe(1)
    expect(badLabel.stderr).toMatch(/label: expected key=value/)
  })
})
