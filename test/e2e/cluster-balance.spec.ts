import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { meshvirt, meshvirtOn, pollUntil, type AgentProcess } from '@meshvirt/testkit'
import { startSimAgents, type SimAgents } from '../support/sim-agents.js'

interface Report { setting?: { mode?: number, setBy?: string }, moves?: Array<{ vmName?: string, fromHost?: string, toHost?: string, reason?: string }>, cvBefore?: number, cvAfter?: number, hosts?: Array<{ hostname?: string, before?: number, after?: number }> }

/** `meshvirt cluster balance` and `vm create --no-balance` against agent processes (simulated hypervisor). */
describe('meshvirt cluster balance', () => {
  let cluster: SimAgents
  const on = (i: number): AgentProcess => cluster.agents[i] as AgentProcess

  beforeAll(async () => {
    cluster = await startSimAgents(2)
    const kernel = join(cluster.dir, 'vmlinuz') // the simulated hypervisor boots nothing; the CLI wants a file
    await writeFile(kernel, 'not a kernel\n')
    for (let i = 0; i < 4; i++) await meshvirtOn(on(0), ['vm', 'create', '--name', `web-${i}`, '--memory', '2G', '--host', 'host-1', '--kernel', kernel])
    await meshvirtOn(on(0), ['vm', 'create', '--name', 'pinned', '--memory', '4G', '--host', 'host-1', '--no-balance', '--kernel', kernel])
  }, 90_000)
  afterAll(async () => { await cluster?.stop() })

  it('--dry-run prints the plan with each move\'s reason and the spread after; a --no-balance VM is never in it', async () => {
    // host-2 plans from its own view: wait until gossip shows it host-1's five VMs, measured.
    const report = await pollUntil(async () => {
      const r = JSON.parse(await meshvirtOn(on(1), ['cluster', 'balance', '--dry-run', '--json'])) as Report
      return (r.moves?.length ?? 0) > 0 ? r : undefined
    }, { timeoutMs: 20_000, what: 'host-2 to plan a move' })
    expect(report.moves?.every((m) => m.vmName?.startsWith('web-') === true && m.reason?.includes('above the mean') === true)).toBe(true)
    expect(report.cvAfter).toBeLessThan(report.cvBefore ?? 0)

    const text = await meshvirtOn(on(1), ['cluster', 'balance', '--dry-run'])
    expect(text).toMatch(/^balancing: off \(default\)/m)
    expect(text).toMatch(/^plan: \d+ moves?$/m)
    expect(text).toMatch(/REASON/)
    expect(text).toMatch(/spread \(coefficient of variation\): [\d.]+ → [\d.]+ after the plan/)
    expect(text).not.toMatch(/pinned/)
  })

  it('--mode set on one host reaches the other; a wrong mode is a usage error', async () => {
    const set = await meshvirtOn(on(0), ['cluster', 'balance', '--mode', 'recommend'])
    expect(set).toMatch(/^balancing: recommend \(set /m)
    await pollUntil(async () => /^balancing: recommend/m.test(await meshvirtOn(on(1), ['cluster', 'balance'])), { timeoutMs: 15_000, what: 'host-2 to follow recommend' })
    const off = await meshvirtOn(on(1), ['cluster', 'balance', '--mode', 'off'])
    expect(off).toMatch(/^balancing: off \(set /m)
    await pollUntil(async () => /^balancing: off \(set/m.test(await meshvirtOn(on(0), ['cluster', 'balance'])), { timeoutMs: 15_000, what: 'host-1 to follow off (the newer setting)' })

    const bad = await meshvirt(['cluster', 'balance', '--mode', 'sometimes', '--data-dir', on(0).dataDir])
    expect(bad.exitCode).not.toBe(0)
    expect(bad.stderr).toMatch(/--mode must be off, recommend or auto/)
  })
})
