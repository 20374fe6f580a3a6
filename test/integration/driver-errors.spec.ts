import { DiskFullError, ImageMissingError, SimHypervisor, type AbortOptions, type VmInfo } from '@meshvirt/hypervisor'
import { pollUntil } from '@meshvirt/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { call, failure } from '../support/control-calls.js'
import { simSpec, startInProcessCluster, type InProcessCluster } from '../support/in-process-cluster.js'
import { vmSpecFromWire } from '@meshvirt/agent'

/** The simulated driver, with the next start failing as a real driver would. */
class FailingStarts extends SimHypervisor {
  nextStart: Error | undefined
  override async start (id: string, options?: AbortOptions): Promise<VmInfo> {
    const err = this.nextStart
    this.nextStart = undefined
    if (err !== undefined) throw err
    return await super.start(id, options)
  }
}

// One translation of typed errors to the wire (control/errors.ts): a driver's code reaches the
// operator, asked at the owner or at another agent, and is never a bare FAILED.
describe('a driver\'s typed errors cross the control API with their code', () => {
  let cluster: InProcessCluster
  const driver = new FailingStarts({ hostLimits: { cpus: 4, memoryMiB: 2048 } })
  beforeAll(async () => {
    cluster = await startInProcessCluster([{ vcpus: 4, memoryMiB: 2048 }, { vcpus: 4, memoryMiB: 2048 }])
    await cluster.agents[0]?.stop()
    const a = await cluster.restart(0, driver)
    const b = cluster.agents[1]
    await pollUntil(() => [a, b].every((x) => x?.mesh.view.hosts().filter((h) => h.liveness === 'alive').length === 2), { timeoutMs: 20_000, what: 'both agents to see each other again' })
  }, 60_000)
  afterAll(async () => { await cluster?.stop() })

  it.each([
    ['a missing image', new ImageMissingError('kernel /sim/vmlinux is gone'), 'NOT_FOUND', 'ERR_IMAGE_MISSING'],
    ['a full disk', new DiskFullError('the data dir\'s file system is full'), 'NO_CAPACITY', 'ERR_DISK_FULL'],
    ['an error the driver does not name', new Error('qemu said no'), 'FAILED', undefined]
  ] as const)('%s on start: %s', async (what, err, code, driverCode) => {
    const [a, b] = cluster.agents as [typeof cluster.agents[0], typeof cluster.agents[0]]
    const name = `typed-${code.toLowerCase().replace(/_/g, '-')}`
    await a.broker.create(vmSpecFromWire({ ...simSpec(name), host: a.hostId }), `${name}-key`)
    await pollUntil(() => a.vms.list().some((v) => v.name === name && v.state === 'running'), { timeoutMs: 10_000, what: `${name} running` })
    await call(a, { stopVm: { vm: { name } } })
    driver.nextStart = err
    // Asked at another agent: forwarded to the owner, its answer kept whole.
    const refused = await failure(call(b, { startVm: { vm: { name } } }))
    expect(refused.code, what).toBe(code)
    expect(refused.message).toBe(`VM ${name} failed to start: ${err.message}`)
    // At the owner too, with the driver's own code in the details.
    driver.nextStart = err
    const again = await call(a, { startVm: { vm: { name } } }).then(() => undefined, (e: unknown) => e as { code: string, details?: Record<string, string> })
    expect(again?.code).toBe(code)
    expect(again?.details?.driverCode).toBe(driverCode)
    await call(a, { deleteVm: { vm: { name } } })
  }, 30_000)
})
