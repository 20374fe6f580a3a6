import { describe, expect, it } from 'vitest'
import { SimHypervisor, type VmSpec } from '../src/index.js'

const spec: VmSpec = { id: 'm', vcpus: 1, memoryMiB: 64, boot: { kind: 'kernel', kernel: '/k' }, disks: [{ name: 'vda', sizeMiB: 8 }] }

describe('SimHypervisor live migration', () => {
  it('hands a running VM over: incoming → running on the destination, migrated on the source', async () => {
    const src = new SimHypervisor({ migrationLatencyMs: 5 })
    const dst = new SimHypervisor()
    await src.create(spec)
    await src.start('m')
    const inc = await dst.prepareIncoming(spec, { disks: 'mirror' })
    expect(inc.nbdExports).toEqual(['vda'])
    expect((await dst.inspect('m')).migration).toBe('incoming')
    await expect(dst.start('m')).rejects.toMatchObject({ code: 'ERR_WRONG_STATE' })
    const result = await src.migrateOut('m', { migrationSocket: inc.migrationSocket, nbdSocket: inc.nbdSocket })
    expect(result.totalMs).toBeGreaterThanOrEqual(4)
    expect((await dst.completeIncoming('m')).info.state).toBe('running')
    const gone = await src.completeOutgoing('m')
    expect(gone.exit?.reason).toBe('migrated')
  })

  it('keeps the source running on an injected failure, refuses bad parameters, and aborts the destination', async () => {
    const src = new SimHypervisor()
    const dst = new SimHypervisor()
    await src.create(spec)
    await src.start('m')
    const inc = await dst.prepareIncoming(spec, { disks: 'shared' })
    expect(inc.nbdSocket).toBeUndefined()
    await expect(src.migrateOut('m', { migrationSocket: inc.migrationSocket, downtimeLimitMs: -1 })).rejects.toMatchObject({ code: 'ERR_INVALID_MIGRATION_PARAMS' })
    src.failNextMigration('m')
    await expect(src.migrateOut('m', { migrationSocket: inc.migrationSocket })).rejects.toMatchObject({ code: 'ERR_MIGRATION_FAILED' })
    expect((await src.inspect('m')).state).toBe('running')
    await expect(src.completeOutgoing('m')).rejects.toMatchObject({ code: 'ERR_WRONG_STATE' })
    await dst.abortIncoming('m')
    await expect(dst.inspect('m')).rejects.toMatchObject({ code: 'ERR_VM_NOT_FOUND' })
    await dst.abortIncoming('m')
  })
})
