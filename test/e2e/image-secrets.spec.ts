import { symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { meshvirtOn, meshvirt, type AgentProcess } from '@meshvirt/testkit'
import { startSimAgents, type SimAgents } from '../support/sim-agents.js'

/**
 * A host's secrets are never a guest's disk (issue 22, finding 3): `vm create --image` naming the
 * host key, the cluster key or a symlink to one is refused at Reserve by a real agent process,
 * with the reason, and nothing is created or held.
 */
describe('vm create --image with a host secret', () => {
  let cluster: SimAgents
  let host: AgentProcess
  beforeAll(async () => {
    cluster = await startSimAgents(1)
    host = cluster.agents[0] as AgentProcess
    await symlink(join(host.dataDir, 'identity.key'), join(cluster.dir, 'innocent.qcow2'))
    await writeFile(join(cluster.dir, 'vmlinuz'), 'not a kernel\n')
  }, 90_000)
  afterAll(async () => { await cluster?.stop() })

  it.each([
    ['DATA_DIR/identity.key', (): string => join(host.dataDir, 'identity.key')],
    ['DATA_DIR/state.db', (): string => join(host.dataDir, 'state.db')],
    ['a symlink to the host key', (): string => join(cluster.dir, 'innocent.qcow2')],
    ['the cluster key file', (): string => join(cluster.dir, 'cluster.key')]
  ])('refuses %s, and nothing is created or held', async (_what, image) => {
    const r = await meshvirt(['vm', 'create', '--name', 'leak', '--memory', '128M', '--disk', '1G', '--image', image(), '--data-dir', host.dataDir])
    expect(r.exitCode, r.stdout).not.toBe(0)
    expect(r.stderr).toMatch(/never a boot source.*\[DRIVER_REFUSED\]/s)
    expect(JSON.parse(await meshvirtOn(host, ['vm', 'ls', '--json']))).toEqual([])
    const [self] = JSON.parse(await meshvirtOn(host, ['host', 'ls', '--json'])) as Array<{ allocated: { memoryBytes: number } }>
    expect(self?.allocated.memoryBytes).toBe(0)
  }, 60_000)

  it('still creates from an ordinary file', async () => {
    await meshvirtOn(host, ['vm', 'create', '--name', 'fine', '--memory', '128M', '--kernel', join(cluster.dir, 'vmlinuz')])
    expect((JSON.parse(await meshvirtOn(host, ['vm', 'ls', '--json'])) as Array<{ name: string }>).map((v) => v.name)).toEqual(['fine'])
  }, 60_000)
})
