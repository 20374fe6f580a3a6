import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MESHVIRT_BIN, meshvirtOn, startAgentProcess, type AgentProcess } from '@meshvirt/testkit'
import { startSimAgents, type SimAgents } from '../support/sim-agents.js'

interface Exit { code: number | null, stderr: string, ms: number }

/** `meshvirt agent ARGS` to its end (bounded): exit code, stderr, how long it ran. */
async function agentExit (args: string[]): Promise<Exit> {
  const t0 = Date.now()
  return await new Promise((resolve) => {
    const child = spawn('node', [MESHVIRT_BIN, 'agent', ...args], { env: { ...process.env, MESHVIRT_TIMING: 'local' }, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 30_000)
    child.once('exit', (code) => { clearTimeout(timer); resolve({ code, stderr, ms: Date.now() - t0 }) })
  })
}

/**
 * Fail whole or not at all (issue 22, finding 6): a start-up error stops the agent with one clear
 * line, non-zero, before it joins — a peer never sees it — and a data dir made by hand is made
 * owner-only.
 */
describe('agent start-up errors', () => {
  let cluster: SimAgents
  let first: AgentProcess
  let dir: string
  beforeAll(async () => {
    cluster = await startSimAgents(1)
    first = cluster.agents[0] as AgentProcess
    dir = await mkdtemp(join(tmpdir(), 'mv-st-'))
  }, 90_000)
  afterAll(async () => {
    await cluster?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  const port = (): string => /\/tcp\/(\d+)\//.exec(first.addr)?.[1] ?? '0'
  it.each<[string, (d: string) => string[], RegExp]>([
    ['an invalid --monitor-listen', (d) => ['-d', join(d, 'mon'), '--monitor-listen', 'bogus:xx'], /--monitor-listen: 'bogus:xx' is not HOST:PORT/],
    ['a data dir too long for the control socket', (d) => ['-d', join(d, 'x'.repeat(100))], /control socket path .* is too long for a unix socket/],
    ['a data dir too long for a VM\'s QMP socket', (d) => ['-d', join(d, 'y'.repeat(Math.max(1, 79 - d.length)))], /is too long: the QMP socket of a VM under it/],
    ['a port in use (the first agent\'s)', (d) => ['-d', join(d, 'port'), '--listen', `/ip4/127.0.0.1/tcp/${port()}`], /cannot listen on \/ip4\/127\.0\.0\.1\/tcp\/\d+: the address is already in use/]
  ])('%s: exits 1 with one line, and never joins', async (_what, args, message) => {
    const r = await agentExit([...args(dir), '--hypervisor', 'sim', '-k', join(cluster.dir, 'cluster.key'), '--bootstrap', first.addr, ...args(dir).includes('--listen') ? [] : ['--listen', '/ip4/127.0.0.1/tcp/0']])
    expect(r.code, r.stderr).toBe(1)
    const lines = r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'))
    expect(lines, r.stderr).toHaveLength(1)
    expect(lines[0]).toMatch(message)
    expect(lines[0]).toMatch(/^meshvirt agent: .*\[INVALID_CONFIG\]$/)
    // The first agent never heard of a second host (one that joined and left would be listed).
    expect((JSON.parse(await meshvirtOn(first, ['host', 'ls', '--json'])) as unknown[]).length).toBe(1)
  }, 60_000)

  it('makes a data dir created by hand (0755) owner-only', async () => {
    const dataDir = join(dir, 'handmade')
    await mkdir(dataDir, { mode: 0o755 })
    const agent = await startAgentProcess(['--hypervisor', 'sim', '-l', '/ip4/127.0.0.1/tcp/0', '--monitor-listen', 'off'], { dataDir })
    try {
      expect((await stat(dataDir)).mode & 0o777).toBe(0o700)
    } finally {
      await agent.stop()
    }
  }, 60_000)
})
