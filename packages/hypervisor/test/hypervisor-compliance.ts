/**
 * The compliance suite every Hypervisor driver passes (the real QEMU driver and the simulation),
 * so the simulation used for scale benchmarks cannot drift from what the real driver does.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Hypervisor, HypervisorEvent, VmSpec } from '../src/index.js'

export interface ComplianceContext {
  hypervisor: Hypervisor
  /** A spec this driver can run, with the given id. */
  spec: (id: string) => VmSpec
  /** Stop everything the test started (QEMU processes by pid) and remove files. */
  cleanup: () => Promise<void>
  /** The virtual size of a disk file, where the driver writes real ones. */
  diskBytes?: (path: string) => Promise<number>
}

async function code (promise: Promise<unknown>): Promise<string | undefined> {
  try { await promise; return undefined } catch (err) { return (err as { code?: string }).code }
}

export function hypervisorTests (name: string, setup: () => Promise<ComplianceContext>): void {
  describe(`Hypervisor compliance: ${name}`, () => {
    let ctx: ComplianceContext
    let events: HypervisorEvent[]
    beforeEach(async () => {
      ctx = await setup()
      events = []
      ctx.hypervisor.onEvent((e) => events.push(e))
    })
    afterEach(async () => { await ctx.cleanup() })

    it('offers what it declares beyond the Hypervisor interface', () => {
      const hv = ctx.hypervisor as unknown as Record<string, unknown> & { replication?: Record<string, unknown> }
      const { liveMigration, diskReplication } = ctx.hypervisor.capabilities
      expect(typeof liveMigration).toBe('boolean')
      expect(typeof diskReplication).toBe('boolean')
      if (liveMigration) {
        for (const m of ['prepareIncoming', 'migrateOut', 'completeIncoming', 'abortIncoming', 'completeOutgoing', 'resumeOutgoing']) expect(typeof hv[m], m).toBe('function')
      }
      if (diskReplication) {
        for (const m of ['startReplication', 'takePoint', 'openPoint', 'releasePoint', 'replicationStatus', 'stopReplication']) expect(typeof hv.replication?.[m], `replication.${m}`).toBe('function')
      }
    })

    it('fingerprints the host with a pinned machine type', async () => {
      const fp = await ctx.hypervisor.fingerprint()
      expect(fp.machineTypes).toContain('pc-i440fx-7.2')
      expect(['kvm', 'tcg']).toContain(fp.accel)
      expect(fp.cpus).toBeGreaterThan(0)
      expect(fp.memoryMiB).toBeGreaterThan(0)
    })

    it('creates, starts, kills, restarts and destroys a VM, with legal-state checks and events', async () => {
      const hv = ctx.hypervisor
      const created = await hv.create(ctx.spec('c1'))
      expect(created.state).toBe('created')
      expect(created.pid).toBeUndefined()
      expect(await code(hv.stop('c1'))).toBe('ERR_WRONG_STATE')

      const running = await hv.start('c1')
      expect(running.state).toBe('running')
      expect(running.pid).toBeGreaterThan(0)
      expect(await code(hv.start('c1'))).toBe('ERR_WRONG_STATE')
      expect((await hv.inspect('c1')).state).toBe('running')
      const stats = await hv.stats('c1')
      expect(stats.id).toBe('c1')
      expect(stats.rssBytes).toBeGreaterThan(0)
      expect(stats.uptimeSeconds).toBeGreaterThanOrEqual(0)

      const killed = await hv.kill('c1')
      expect(killed.state).toBe('stopped')
      expect(killed.exit?.reason).toBe('killed')
      expect(killed.pid).toBeUndefined()
      expect(await code(hv.stats('c1'))).toBe('ERR_WRONG_STATE')

      expect((await hv.start('c1')).state).toBe('running')
      await hv.destroy('c1')
      expect(await code(hv.inspect('c1'))).toBe('ERR_VM_NOT_FOUND')
      expect(events.map((e) => e.type)).toEqual(['started', 'stopped', 'started', 'stopped'])
      expect(events.every((e) => e.id === 'c1')).toBe(true)
    })

    it('stops gracefully (escalating if the guest ignores ACPI) and reports why', async () => {
      const hv = ctx.hypervisor
      await hv.create(ctx.spec('g1'))
      await hv.start('g1')
      const stopped = await hv.stop('g1', { acpiTimeoutMs: 300, termTimeoutMs: 3000 })
      expect(stopped.state).toBe('stopped')
      expect(['guest-shutdown', 'sigterm']).toContain(stopped.exit?.reason)
      expect(events.at(-1)).toMatchObject({ type: 'stopped', id: 'g1' })
    })

    it('refuses bad specs with typed errors', async () => {
      const hv = ctx.hypervisor
      await hv.create(ctx.spec('dup'))
      expect(await code(hv.create(ctx.spec('dup')))).toBe('ERR_VM_EXISTS')
      expect(await code(hv.create({ ...ctx.spec('big'), memoryMiB: 1 << 30 }))).toBe('ERR_RESOURCES_TOO_LARGE')
      expect(await code(hv.create({ ...ctx.spec('big'), vcpus: 4096 }))).toBe('ERR_RESOURCES_TOO_LARGE')
      expect(await code(hv.create(ctx.spec('../escape')))).toBe('ERR_INVALID_SPEC')
      expect(await code(hv.start('nope'))).toBe('ERR_VM_NOT_FOUND')
      expect((await hv.list()).map((v) => v.id)).toEqual(['dup'])
    })

    it('resizes: a stopped VM any size, a running one\'s disk and memory online (with room), never a shrink', async () => {
      const hv = ctx.hypervisor
      const spec = ctx.spec('z1')
      const diskMiB = spec.disks?.[0]?.sizeMiB ?? 0
      expect(diskMiB, 'the suite\'s spec has a disk').toBeGreaterThan(0)
      await hv.create(spec)
      const stopped = await hv.resize('z1', { vcpus: 2, memoryMiB: spec.memoryMiB + 64, disks: { vda: diskMiB + 16 } })
      expect([stopped.spec.vcpus, stopped.spec.memoryMiB, stopped.spec.disks?.[0]?.sizeMiB]).toEqual([2, spec.memoryMiB + 64, diskMiB + 16])
      if (ctx.diskBytes !== undefined) expect(await ctx.diskBytes(stopped.paths.disks.vda as string)).toBe((diskMiB + 16) * 2 ** 20)
      expect(await code(hv.resize('z1', { disks: { vda: diskMiB } })), 'a disk never shrinks').toBe('ERR_INVALID_SPEC')
      expect(await code(hv.resize('z1', { disks: { vdb: 64 } })), 'no such disk').toBe('ERR_INVALID_SPEC')
      expect(await code(hv.resize('z1', { vcpus: 100_000 })), 'beyond the host').not.toBeUndefined()
      expect((await hv.inspect('z1')).spec.vcpus, 'a refused resize changes nothing').toBe(2)

      await hv.start('z1')
      expect(await code(hv.resize('z1', { memoryMiB: spec.memoryMiB + 192 })), 'memory online, with no room to grow').toBe('ERR_WRONG_STATE')
      expect(await code(hv.resize('z1', { vcpus: 1 })), 'vCPUs while running').toBe('ERR_WRONG_STATE')
      await hv.stop('z1')
      await hv.resize('z1', { vcpus: 1 })
      await hv.start('z1')
      expect(await code(hv.resize('z1', { vcpus: 2 })), 'vCPUs online, with no room for them').toBe('ERR_WRONG_STATE')
      await hv.stop('z1')
      await hv.resize('z1', { maxMemoryMiB: 1024, maxVcpus: 2 })
      await hv.start('z1')
      const grown = await hv.resize('z1', { memoryMiB: spec.memoryMiB + 192 })
      expect(grown.spec).toMatchObject({ memoryMiB: spec.memoryMiB + 192, memoryDimmsMiB: [128], maxMemoryMiB: 1024 })
      // vCPUs grow online within the room (one CPU device each); they never shrink online.
      const cpus = await hv.resize('z1', { vcpus: 2 })
      expect(cpus.spec).toMatchObject({ vcpus: 2, bootVcpus: 1, maxVcpus: 2 })
      expect(await code(hv.resize('z1', { vcpus: 1 })), 'fewer vCPUs online').toBe('ERR_WRONG_STATE')
      expect(await code(hv.resize('z1', { maxVcpus: 4 })), 'the vCPU room changes only while stopped').toBe('ERR_WRONG_STATE')
      expect(await code(hv.resize('z1', { memoryMiB: spec.memoryMiB + 256 })), 'not a whole 128 MiB block').toBe('ERR_WRONG_STATE')
      expect(await code(hv.resize('z1', { maxMemoryMiB: 2048 })), 'the room changes only while stopped').toBe('ERR_WRONG_STATE')
      const online = await hv.resize('z1', { disks: { vda: diskMiB + 32 } })
      expect(online.state).toBe('running')
      expect(online.spec.disks?.[0]?.sizeMiB).toBe(diskMiB + 32)
      if (ctx.diskBytes !== undefined) expect(await ctx.diskBytes(online.paths.disks.vda as string)).toBe((diskMiB + 32) * 2 ** 20)
      expect((await hv.inspect('z1')).spec.memoryMiB, 'kept across the refusals').toBe(spec.memoryMiB + 192)
      await hv.kill('z1')
      // A fresh boot folds what was added into boot memory.
      const fresh = (await hv.start('z1')).spec
      expect(fresh).not.toHaveProperty('memoryDimmsMiB')
      expect(fresh).not.toHaveProperty('bootVcpus')
      expect(fresh.vcpus).toBe(2)
      await hv.kill('z1')
    })

    it('recover() of a running VM keeps it running and reports it', async () => {
      const hv = ctx.hypervisor
      await hv.create(ctx.spec('r1'))
      const started = await hv.start('r1')
      const recovered = await hv.recover('r1')
      expect(recovered.state).toBe('running')
      expect(recovered.pid).toBe(started.pid)
      await hv.kill('r1')
    })
  })
}
