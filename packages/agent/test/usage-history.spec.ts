import { describe, expect, it } from 'vitest'
import type { HostEntry } from '@meshvirt/mesh'
import { emptyAdvertContent } from '@meshvirt/mesh'
import { loadBetween, parseDiskstats, parseMeminfo, parseNetDev, parseProcStat, readHostCounters } from '../src/monitor/host-load.js'
import { UsageHistory } from '../src/monitor/usage-history.js'

describe('host load from /proc', () => {
  it('reads CPU, memory, whole disks and the host\'s own interfaces', () => {
    expect(parseProcStat('cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 1 2 3 4\n')).toEqual({ busy: 160, total: 980 })
    expect(parseMeminfo('MemTotal:       1000 kB\nMemFree:  10 kB\nMemAvailable:    400 kB\n')).toEqual({ totalBytes: 1024000, availableBytes: 409600 })
    const diskstats = [
      '   8       0 sda 100 0 2000 0 50 0 4000 0 0 0 0',
      '   8       1 sda1 100 0 2000 0 50 0 4000 0 0 0 0',
      '   7       0 loop0 9 0 9999 0 9 0 9999 0 0 0 0',
      ' 259       0 nvme0n1 1 0 10 0 1 0 20 0 0 0 0'
    ].join('\n')
    expect(parseDiskstats(diskstats)).toEqual({ readBytes: 2010 * 512, writeBytes: 4020 * 512 })
    const netdev = 'Inter-|   Receive\n face |bytes packets\n    lo: 999 1 0 0 0 0 0 0 999 1 0 0 0 0 0 0\n  eth0: 1000 10 0 0 0 0 0 0 500 5 0 0 0 0 0 0\n mvbr7: 77 1 0 0 0 0 0 0 77 1 0 0 0 0 0 0\nveth1: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n'
    expect(parseNetDev(netdev)).toEqual({ rxBytes: 1000, txBytes: 500 })
  })

  it('turns two readings into utilisation and rates', () => {
    const a = { atMs: 0, cpuBusy: 100, cpuTotal: 1000, memoryTotalBytes: 1000, memoryAvailableBytes: 600, diskReadBytes: 0, diskWriteBytes: 0, netRxBytes: 0, netTxBytes: 0, load1: 0.5 }
    const b = { ...a, atMs: 2000, cpuBusy: 150, cpuTotal: 1100, memoryAvailableBytes: 500, diskReadBytes: 4000, diskWriteBytes: 2000, netRxBytes: 1000, netTxBytes: 500, load1: 0.7 }
    expect(loadBetween(a, b, 3)).toEqual({ load1: 0.7, cpuUtilization: 0.5, memoryUsedBytes: 500, diskUsedBytes: 0, vmsRunning: 3, diskReadBps: 2000, diskWriteBps: 1000, netRxBps: 500, netTxBps: 250 })
  })

  it('reads this machine', async () => {
    const c = await readHostCounters()
    expect(c.cpuTotal).toBeGreaterThan(0)
    expect(c.memoryTotalBytes).toBeGreaterThan(c.memoryAvailableBytes)
  })
})

describe('UsageHistory', () => {
  const host = (id: string, cpu: number, vms: Array<{ id: string, cpuCores: number }> = []): HostEntry => ({
    advert: { ...emptyAdvertContent(), hostId: id, hostname: `name-${id}`, incarnation: 1, seq: 1, addrs: [], sentAtMs: 0, heartbeatIntervalMs: 1000, load: { load1: 0, cpuUtilization: cpu, memoryUsedBytes: 100, diskUsedBytes: 0, vmsRunning: 0, netRxBps: 10 }, vms: vms.map((v) => ({ id: v.id, name: `vm-${v.id}`, epoch: 1, role: 'primary', state: 'running', resources: { vcpus: 1, memoryBytes: 0, diskBytes: 0 }, owner: id, group: '', nics: [], usage: { cpuCores: v.cpuCores, memoryBytes: 5 } })) },
    liveness: 'alive'
  }) as unknown as HostEntry

  it('keeps one sample per round per host and VM, aligned, at most N, and NaN where a VM was not there', () => {
    const h = new UsageHistory(1000, 3)
    h.record([host('a', 0.1)], 1000)
    h.record([host('a', 0.2, [{ id: 'v', cpuCores: 0.5 }])], 2000)
    h.record([host('a', 0.3, [{ id: 'v', cpuCores: 0.6 }])], 3000)
    h.record([host('a', 0.4, [{ id: 'v', cpuCores: 0.7 }])], 4000)
    const wire = h.toWire()
    const a = wire.series?.find((s) => s.kind === 'host')
    expect(a).toMatchObject({ id: 'a', name: 'name-a', timesMs: [2000, 3000, 4000], cpu: [0.2, 0.3, 0.4], netRxBps: [10, 10, 10] })
    expect(wire.series?.find((s) => s.kind === 'vm')).toMatchObject({ id: 'v', timesMs: [2000, 3000, 4000], cpu: [0.5, 0.6, 0.7], memoryBytes: [5, 5, 5], replicaLagS: [] })
    // A replicated VM's lag, as its owner gossips it.
    const replicated = host('a', 0.5, [{ id: 'v', cpuCores: 1 }])
    ;(replicated.advert.vms[0] as { replicaLagMs?: number }).replicaLagMs = 1500
    h.record([replicated], 5000)
    expect(h.toWire().series?.find((s) => s.kind === 'vm')?.replicaLagS).toEqual([Number.NaN, Number.NaN, 1.5])
  })

  it('a host that has not measured its load yet has gaps, not zeros', () => {
    const h = new UsageHistory(1000, 3)
    const fresh = host('a', 0)
    fresh.advert.load.memoryUsedBytes = 0
    h.record([fresh], 1000)
    h.record([host('a', 0.5)], 2000)
    expect(h.toWire().series?.[0]).toMatchObject({ cpu: [Number.NaN, 0.5], memoryBytes: [Number.NaN, 100] })
  })

  it('forgets what the gossip has not shown for the whole window', () => {
    const h = new UsageHistory(1000, 2)
    h.record([host('a', 0.1, [{ id: 'v', cpuCores: 1 }])], 1000)
    h.record([host('a', 0.1)], 2000)
    h.record([host('a', 0.1)], 4000)
    expect(h.toWire().series?.map((s) => s.kind)).toEqual(['host'])
  })
})

describe('a guest\'s I/O rates (UsageSampler)', () => {
  it('come from two readings of one run; a driver that does not measure I/O gives none', async () => {
    const { UsageSampler } = await import('../src/balance/usage-sampler.js')
    const s = new UsageSampler()
    s.record('v', { cpuSeconds: 1, uptimeSeconds: 10, rssBytes: 100, diskReadBytes: 1000, diskWriteBytes: 0, netRxBytes: 50, netTxBytes: 0 })
    expect(s.usage('v')?.diskReadBps).toBeUndefined()
    s.record('v', { cpuSeconds: 2, uptimeSeconds: 12, rssBytes: 100, diskReadBytes: 3000, diskWriteBytes: 400, netRxBytes: 250, netTxBytes: 10 })
    expect(s.usage('v')).toEqual({ cpuCores: 0.5, memoryBytes: 100, diskReadBps: 1000, diskWriteBps: 200, netRxBps: 100, netTxBps: 5 })
    s.record('w', { cpuSeconds: 1, uptimeSeconds: 10, rssBytes: 100 })
    s.record('w', { cpuSeconds: 2, uptimeSeconds: 12, rssBytes: 100 })
    expect(s.usage('w')).toEqual({ cpuCores: 0.5, memoryBytes: 100 })
  })
})
