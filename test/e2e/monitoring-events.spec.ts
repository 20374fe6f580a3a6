import { afterEach, describe, expect, it } from 'vitest'
import { simVmSpec } from '@meshvirt/agent'
import { events } from '../../packages/cli/src/commands/events.js'
import { runCommand, startMonitoredCluster, type MonitoredCluster } from '../support/monitored-cluster.js'
import { pollUntil } from '../support/poll.js'

const HOST = { vcpus: 4, memoryMiB: 1024 }

describe('meshvirt events', () => {
  let cluster: MonitoredCluster | undefined
  afterEach(async () => { await cluster?.stop(); cluster = undefined })

  it('--follow on host C shows, in order, the events of a VM created through host A', async () => {
    cluster = await startMonitoredCluster([HOST, HOST, HOST])
    const a = cluster.sim.agents[0]
    const cDir = cluster.controlDirs[2] as string
    // Following on C before the VM exists: the command waits at C's agent for the events.
    const following = runCommand(events, ['--follow', '--vm', 'follow-me', '--count', '4', '--json', '--data-dir', cDir])
    const { vm } = await a!.broker.create(simVmSpec('follow-me'), 'follow-key')
    const id = vm.summary?.id as string
    const owner = cluster.sim.agents.find((x) => x.hostId === vm.summary?.owner)!
    await pollUntil(() => owner.vms.get(id)?.state === 'running', { timeoutMs: 10_000, what: 'the VM running' })
    await owner.vms.stop(id)
    await owner.vms.delete(id)
    const { code, out } = await following
    expect(code).toBe(0)
    const printed = out.map((l) => JSON.parse(l) as { kind: string, vmId: string, vmName: string, hostId: string, seq: number })
    expect(printed.map((e) => e.kind)).toEqual(['vm-created', 'vm-started', 'vm-stopped', 'vm-deleted'])
    expect(printed.every((e) => e.vmId === id && e.vmName === 'follow-me' && e.hostId === owner.hostId)).toBe(true)
    expect(printed.map((e) => e.seq)).toEqual([...printed.map((e) => e.seq)].sort((x, y) => x - y))
  })

  it('lists what the agent holds, naming hosts, as a table or JSON', async () => {
    cluster = await startMonitoredCluster([HOST, HOST, HOST])
    const dir = cluster.controlDirs[1] as string
    const ids = cluster.sim.agents.map((x) => x.hostId)
    const m = cluster.monitors[1]!
    await pollUntil(() => ids.every((id) => m.events.ring.list().events.some((r) => r.event.kind === 'host-joined' && r.event.hostId === id)), { timeoutMs: 10_000, what: 'every host-joined on h1' })
    const table = await runCommand(events, ['--data-dir', dir])
    expect(table.code).toBe(0)
    for (const name of ['h0', 'h1', 'h2']) expect(table.out.some((l) => /host-joined/.test(l) && l.includes(`by ${name}`))).toBe(true)
    const json = await runCommand(events, ['--json', '--data-dir', dir])
    const list = JSON.parse(json.out.join('\n')) as Array<{ kind: string, hostId: string, cursor: number }>
    expect(new Set(list.filter((e) => e.kind === 'host-joined').map((e) => e.hostId))).toEqual(new Set(ids))
    expect(list.map((e) => e.cursor)).toEqual([...list.map((e) => e.cursor)].sort((x, y) => x - y))
    expect((await runCommand(events, ['--vm', 'nothing-by-this-name', '--json', '--data-dir', dir])).out).toEqual(['[]'])
  })

  it('refuses a bad --count', async () => {
    await expect(runCommand(events, ['--count', 'zero'])).rejects.toThrow(/--count/)
  })
})
