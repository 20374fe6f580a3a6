import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { meshvirt, meshvirtOn, MESHVIRT_BIN, type AgentProcess, pollUntil } from '@meshvirt/testkit'
import { startSimAgents, type SimAgents } from '../support/sim-agents.js'

interface PrintedEvent { kind: string, vmId: string, vmName: string, hostId: string, seq: number, cursor: number }

/** `meshvirt events` against real agents (simulated hypervisor: the events are the control plane's). */
describe('meshvirt events', () => {
  let cluster: SimAgents
  let kernel: string
  const on = (i: number): AgentProcess => cluster.agents[i] as AgentProcess

  beforeAll(async () => {
    cluster = await startSimAgents(3)
    kernel = join(cluster.dir, 'vmlinuz') // the simulated hypervisor boots nothing; the CLI wants a file
    await writeFile(kernel, 'not a kernel\n')
  }, 90_000)
  afterAll(async () => { await cluster?.stop() })

  it('--follow on host-3 shows, in order, the events of a VM created through host-1', async () => {
    // Following on host-3 before the VM exists: the command waits at host-3's agent for the events.
    const following = new Promise<{ code: number | null, out: string, err: string }>((resolve) => {
      const child = spawn('node', [MESHVIRT_BIN, 'events', '--follow', '--vm', 'follow-me', '--count', '4', '--json', '--data-dir', on(2).dataDir])
      let out = ''
      let err = ''
      child.stdout.on('data', (d: Buffer) => { out += d.toString() })
      child.stderr.on('data', (d: Buffer) => { err += d.toString() })
      child.once('close', (code) => { resolve({ code, out, err }) })
    })
    await meshvirtOn(on(0), ['vm', 'create', '--name', 'follow-me', '--memory', '128M', '--kernel', kernel])
    const vm = JSON.parse(await meshvirtOn(on(0), ['vm', 'show', 'follow-me', '--json'])) as { id: string, owner: string, state: string }
    expect(vm.state).toBe('running')
    await meshvirtOn(on(0), ['vm', 'stop', 'follow-me'])
    await meshvirtOn(on(0), ['vm', 'delete', 'follow-me'])
    const { code, out, err } = await following
    expect(code, err).toBe(0)
    const printed = out.trim().split('\n').map((l) => JSON.parse(l) as PrintedEvent)
    expect(printed.map((e) => e.kind)).toEqual(['vm-created', 'vm-started', 'vm-stopped', 'vm-deleted'])
    expect(printed.every((e) => e.vmId === vm.id && e.vmName === 'follow-me' && e.hostId === vm.owner)).toBe(true)
    expect(printed.map((e) => e.seq)).toEqual([...printed.map((e) => e.seq)].sort((x, y) => x - y))
  })

  it('lists what the agent holds, naming hosts, as a table or JSON', async () => {
    const ids = cluster.agents.map((a) => a.hostId)
    const list = await pollUntil(async () => {
      const l = JSON.parse(await meshvirtOn(on(1), ['events', '--json'])) as PrintedEvent[]
      return ids.every((id) => l.some((e) => e.kind === 'host-joined' && e.hostId === id)) ? l : undefined
    }, { timeoutMs: 15_000, what: 'every host-joined on host-2' })
    expect(list.map((e) => e.cursor)).toEqual([...list.map((e) => e.cursor)].sort((x, y) => x - y))
    const table = (await meshvirtOn(on(1), ['events'])).split('\n')
    for (const name of ['host-1', 'host-2', 'host-3']) expect(table.some((l) => /host-joined/.test(l) && l.includes(`by ${name}`)), `${name} in\n${table.join('\n')}`).toBe(true)
    expect((await meshvirtOn(on(1), ['events', '--vm', 'nothing-by-this-name', '--json'])).trim()).toBe('[]')
  })

  it('refuses a bad --count', async () => {
    const r = await meshvirt(['events', '--count', 'zero', '--data-dir', on(0).dataDir])
    expect(r.exitCode).not.toBe(0)
    expect(r.stderr).toMatch(/--count/)
  })
})
