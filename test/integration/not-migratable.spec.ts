import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { simSpec, startInProcessCluster, type InProcessCluster } from '../support/in-process-cluster.js'
import { meshvirt, pollUntil } from '@meshvirt/testkit'
import { vmSpecFromWire } from '@meshvirt/agent'

const dataDirOf = (socket: string): string => socket.replace(/\/[^/]+$/, '')

describe('a --not-migratable VM stays on its host', () => {
  let cluster: InProcessCluster
  beforeAll(async () => {
    cluster = await startInProcessCluster([{ vcpus: 4, memoryMiB: 2048 }, { vcpus: 4, memoryMiB: 2048 }])
  }, 60_000)
  afterAll(async () => { await cluster?.stop() })

  it('vm migrate refuses it with the reason; host drain reports it as staying and moves the others', async () => {
    const [a, b] = cluster.agents as [typeof cluster.agents[0], typeof cluster.agents[0]]
    await a.broker.create(vmSpecFromWire({ ...simSpec('pinned'), host: a.hostId, notMigratable: true }), 'pinned-1')
    await a.broker.create(vmSpecFromWire({ ...simSpec('mobile'), host: a.hostId }), 'mobile-1')
    await pollUntil(() => a.vms.list().every((v) => v.state === 'running'), { timeoutMs: 10_000, what: 'both VMs running' })

    // Asked at another agent: forwarded to the owner, refused there.
    const mig = await meshvirt(['vm', 'migrate', 'pinned', '--data-dir', dataDirOf(b.controlSocket)])
    expect(mig.exitCode).not.toBe(0)
    expect(mig.stderr).toMatch(/cannot be migrated: it was created --not-migratable/)
    expect(a.vms.list().map((v) => v.name).sort()).toEqual(['mobile', 'pinned'])

    const drain = await meshvirt(['host', 'drain', 'h0', '--json', '--data-dir', dataDirOf(b.controlSocket)])
    const report = JSON.parse(drain.stdout) as { state: string, vms: Array<{ name: string, toHost?: string, error?: string }> }
    expect(report.state).toBe('draining')
    expect(report.vms.find((v) => v.name === 'pinned')?.error).toMatch(/^stays: it was created --not-migratable/)
    expect(report.vms.find((v) => v.name === 'mobile')).toMatchObject({ toHost: b.hostId })
    expect(a.vms.list().map((v) => v.name)).toEqual(['pinned'])
    expect(b.vms.list().map((v) => v.name)).toEqual(['mobile'])
  }, 90_000)
})
