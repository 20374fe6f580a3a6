import { mkdir, mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SimHypervisor } from '@meshvirt/hypervisor'
import { runAgent, type RunningAgent } from '../src/agent.js'
import { resolveAgentConfig } from '../src/config/agent-config.js'
import { vmDiskTotal } from '../src/host/disk-total.js'
import { auditLedger, withGuestOverhead } from '../src/ledger/ledger-math.js'
import { ResourceLedger } from '../src/ledger/resource-ledger.js'
import { silentLogger } from '../src/log/logger.js'
import { writeClusterKey } from '../src/store/cluster-key-file.js'
import { StateStore } from '../src/store/state-store.js'
import { vmSpecFromWire } from '../src/vm/vm-spec-codec.js'

const MIB = 2 ** 20
const GIB = 2 ** 30

describe('vmDiskTotal: free space plus what the ledger\'s own VM disks hold', () => {
  it.each([
    ['first start, nothing stored', 100 * GIB, 0, 0, 100 * GIB],
    ['restart: 10 GiB of disks written, 10 GiB allocated', 90 * GIB, 10 * GIB, 10 * GIB, 100 * GIB],
    ['thin disks: 2 GiB written of 10 GiB allocated (room kept to grow)', 98 * GIB, 2 * GIB, 10 * GIB, 100 * GIB],
    ['files the ledger does not know (orphans) stay used', 80 * GIB, 20 * GIB, 10 * GIB, 90 * GIB],
    ['a full filesystem', 0, 5 * GIB, 5 * GIB, 5 * GIB],
    ['negative free (bad statfs) is none', -1, 0, 0, 0]
  ])('%s', (_what, free, files, allocated, total) => {
    expect(vmDiskTotal(free, files, allocated)).toBe(total)
    // Whatever the history, new VMs are never offered more than the filesystem has free.
    expect(vmDiskTotal(free, files, allocated) - allocated).toBeLessThanOrEqual(Math.max(0, free))
  })
})

describe('QEMU\'s per-guest overhead in what the host holds back', () => {
  it.each([
    [{ vcpus: 1, memoryBytes: 512 * MIB, diskBytes: 0 }, 144 * MIB, 0, 512 * MIB],
    [{ vcpus: 1, memoryBytes: 512 * MIB, diskBytes: 0 }, 144 * MIB, 3, 944 * MIB],
    [{ vcpus: 1, memoryBytes: 0, diskBytes: 0 }, 0, 7, 0]
  ])('reserved %j + %d × %d guests', (reserved, overhead, guests, memory) => {
    expect(withGuestOverhead(reserved, overhead, guests)).toEqual({ ...reserved, memoryBytes: memory })
  })

  describe('a ledger packed to its memory ratio', () => {
    let dir: string
    let store: StateStore
    beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'mv-ovh-')); store = StateStore.open(dir) })
    afterEach(async () => { store.close(); await rm(dir, { recursive: true, force: true }) })

    it('1 GiB host, 144 MiB overhead per guest: three 128 MiB guests fit, not eight', () => {
      const ledger = new ResourceLedger(store, { total: { vcpus: 64, memoryBytes: GIB, diskBytes: GIB }, hostReserved: { vcpus: 0, memoryBytes: 0, diskBytes: 0 }, overcommit: { cpu: 1, memory: 1, disk: 1 }, guestOverheadBytes: 144 * MIB })
      const want = { vcpus: 1, memoryBytes: 128 * MIB, diskBytes: 0 }
      const granted = Array.from({ length: 8 }, (_, i) => ledger.reserve({ requestId: `r${i}`, brokerId: 'b', resources: want, ttlMs: 10_000 }).ok)
      expect(granted).toEqual([true, true, true, false, false, false, false, false])
      // 3 × (128 + 144) = 816 MiB of 1024: sound, and the next guest is offered what it really has.
      expect(ledger.audit()).toEqual([])
      expect(ledger.hostReserved().memoryBytes).toBe(4 * 144 * MIB)
      const c = ledger.capacity()
      expect(c.total.memoryBytes - c.hostReserved.memoryBytes - c.reservations.memoryBytes).toBe((1024 - 816 - 144) * MIB)
      expect(auditLedger(c)).toEqual([])
      // A replica's reservation (disk only) runs no guest: no overhead.
      expect(ledger.reserve({ requestId: 'rep', brokerId: 'b', resources: { vcpus: 0, memoryBytes: 0, diskBytes: MIB }, ttlMs: 10_000 }).ok).toBe(true)
      expect(ledger.hostReserved().memoryBytes).toBe(4 * 144 * MIB)
    })
  })
})

describe('disk capacity after an agent restart', () => {
  let dir: string
  let agent: RunningAgent | undefined
  afterEach(async () => { await agent?.stop(); agent = undefined; await rm(dir, { recursive: true, force: true }) })

  it('does not count the VMs\' disks twice: the total stays, the free space drops once', async () => {
    dir = await mkdtemp(join(tmpdir(), 'mv-disk-'))
    const key = join(dir, 'cluster.key')
    await writeClusterKey(key)
    const config = resolveAgentConfig([{ name: 'test', input: { name: 'h0', dataDir: join(dir, 'h0'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], clusterKeyFile: key } }])
    // Disk is measured (statfs of the data dir), not given: that is the case that double-counted.
    const start = async (): Promise<RunningAgent> => await runAgent(config, {
      log: silentLogger,
      timing: 'local',
      hypervisor: { driver: new SimHypervisor({ hostLimits: { cpus: 4, memoryMiB: 4096 } }), facts: { accelerator: 'tcg', qemuVersion: 'sim', machineTypes: [] } },
      inventory: { vcpus: 4, memoryBytes: 4096 * MIB }
    })
    agent = await start()
    const before = agent.ledger.capacity().total.diskBytes
    const disk = 256 * MIB
    const { vm } = await agent.broker.create(vmSpecFromWire({ name: 'd1', resources: { vcpus: 1, memoryBytes: 128 * MIB, diskBytes: disk }, boot: { kernel: '/sim/vmlinux' } }), 'd1')
    // The simulated driver writes no files: lay down the VM's disk as QEMU would, fully written.
    const vmDir = join(config.dataDir, 'vms', vm.summary?.id as string)
    await mkdir(vmDir, { recursive: true })
    const f = await open(join(vmDir, 'vda.qcow2'), 'w')
    const chunk = Buffer.alloc(16 * MIB, 1)
    for (let i = 0; i < disk / chunk.length; i++) await f.write(chunk)
    await f.sync()
    await f.close()
    await agent.stop()
    agent = await start()
    const after = agent.ledger.capacity()
    // Other processes share this filesystem: allow 64 MiB of drift, a quarter of the disk.
    expect(Math.abs(after.total.diskBytes - before)).toBeLessThan(64 * MIB)
    expect(after.allocated.diskBytes).toBe(disk)
    expect(Math.abs((after.total.diskBytes - after.allocated.diskBytes) - (before - disk))).toBeLessThan(64 * MIB)
  }, 60_000)
})
