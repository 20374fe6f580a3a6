import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureGuest, killQemusUnder, meshvirt, meshvirtOn, startAgentCluster, type AgentProcess, type TestGuest, pollUntil } from '@meshvirt/testkit'

interface GroupJson { name: string, count: number, owner: string, members: Array<{ name: string, state: string, hostId: string }> }

// VM groups with real agent processes and real QEMU guests (TCG), issue 19: a host holding two
// members dies (agent and guests killed, as a power cut) and the group is back at its count elsewhere.
describe('VM groups end to end: 3 agent processes, real QEMU', () => {
  let dir: string
  let guest: TestGuest
  let agents: AgentProcess[] = []
  const dead = new Set<string>()
  const live = (): AgentProcess[] => agents.filter((a) => !dead.has(a.hostId))

  beforeAll(async () => {
    guest = await ensureGuest()
    dir = await mkdtemp(join(tmpdir(), 'mv-groups-'))
    await meshvirt(['cluster', 'init', '--out', join(dir, 'cluster.key')])
    ;({ agents } = await startAgentCluster(dir, join(dir, 'cluster.key'), 3, () => ['--image-dir', guest.dir]))
    await pollUntil(async () => (JSON.parse(await meshvirtOn(agents[0] as AgentProcess, ['host', 'ls', '--json'])) as unknown[]).length === 3, { timeoutMs: 20_000, what: 'host-1 to see 3 hosts' })
  }, 240_000)

  afterAll(async () => {
    await Promise.all(agents.map(async (a) => { await a.stop() }))
    for (const i of [1, 2, 3]) await killQemusUnder(join(dir, `host-${i}`))
    await rm(dir, { recursive: true, force: true })
  })

  const show = async (a: AgentProcess): Promise<GroupJson> => JSON.parse(await meshvirtOn(a, ['group', 'show', 'db', '--json'])) as GroupJson
  const running = (g: GroupJson): string[] => g.members.filter((m) => m.state === 'running' && !dead.has(m.hostId)).map((m) => m.name).sort()

  it('a group of 4 spread over 3 hosts; the host with two members dies: 4 running elsewhere within 30 s', async () => {
    const created = JSON.parse(await meshvirtOn(agents[0] as AgentProcess, ['group', 'create', 'db', '--count', '4', '--memory', '128M',
      '--kernel', guest.kernel, '--initrd', guest.initrd, '--cmdline', guest.cmdline, '--json'])) as GroupJson
    expect(running(created)).toEqual(['db-1', 'db-2', 'db-3', 'db-4'])
    const perHost = new Map<string, string[]>()
    for (const m of created.members) perHost.set(m.hostId, [...perHost.get(m.hostId) ?? [], m.name])
    // Spread: every host has one before any has two.
    expect([...perHost.values()].map((l) => l.length).sort()).toEqual([1, 1, 2])
    const [victimId, lost] = [...perHost.entries()].find(([, l]) => l.length === 2) as [string, string[]]
    const victim = agents.find((a) => a.hostId === victimId) as AgentProcess
    const wasOwner = created.owner === victimId

    // A power cut: the agent and its guests, at once.
    const killedAt = Date.now()
    dead.add(victimId)
    await victim.kill9()
    await killQemusUnder(victim.dataDir)
    const viewer = live()[0] as AgentProcess
    let last: GroupJson | undefined
    await pollUntil(async () => {
      last = await show(viewer)
      return running(last).join() === 'db-1,db-2,db-3,db-4' && last.owner !== victimId && last.owner !== ''
    }, { timeoutMs: 30_000, intervalMs: 250, what: 'group db back at 4 running members on live hosts' })
    const tookMs = Date.now() - killedAt
    const back = last as GroupJson
    for (const name of lost) expect(back.members.find((m) => m.name === name && m.state === 'running')?.hostId).not.toBe(victimId)
    console.log(`group db: ${lost.join(', ')} lost with ${wasOwner ? 'the owner' : 'a member host'}; 4 running again ${tookMs} ms after the kill`)

    // Scaled in from a live host, then deleted with its members.
    const scaled = JSON.parse(await meshvirtOn(viewer, ['group', 'scale', 'db', '--count', '2', '--json'])) as GroupJson
    expect(running(scaled)).toEqual(['db-1', 'db-2'])
    await meshvirtOn(viewer, ['group', 'delete', 'db'])
    const vms = JSON.parse(await meshvirtOn(viewer, ['vm', 'ls', '--json'])) as Array<{ name: string, state: string }>
    expect(vms.filter((v) => /^db-\d+$/.test(v.name) && v.state !== 'unknown')).toEqual([])
  }, 240_000)
})
