import type { HostEntry } from '@meshvirt/mesh'
import type { meshvirt } from '@meshvirt/proto'

/** One sample per interval, an hour of them. */
export const HISTORY_INTERVAL_MS = 15_000
export const HISTORY_POINTS = 240

type HostKey = 'cpu' | 'memoryBytes' | 'diskReadBps' | 'diskWriteBps' | 'netRxBps' | 'netTxBps' | 'replicaLagS'

interface Series {
  kind: 'host' | 'vm'
  id: string
  name: string
  timesMs: number[]
  values: Partial<Record<HostKey, number[]>>
  /** Last sample this series had a value in: gone from the gossip for an hour, it is dropped. */
  lastMs: number
}

/**
 * The last hour of every host's and VM's use as this agent hears it in the gossip (each host's
 * advert carries its load and its VMs' measured use): any agent can draw any host's charts without
 * asking it. One sample per interval, kept in a ring of HISTORY_POINTS.
 */
export class UsageHistory {
  private readonly series = new Map<string, Series>()

  constructor (private readonly intervalMs = HISTORY_INTERVAL_MS, private readonly points = HISTORY_POINTS) {}

  record (hosts: readonly HostEntry[], nowMs: number): void {
    for (const h of hosts) {
      if (h.liveness === 'dead') continue
      const a = h.advert
      const l = a.load
      // A host that has not measured its load yet (just started, or an older agent) says 0 memory.
      const measured = l.memoryUsedBytes > 0
      this.add('host', a.hostId, a.hostname || a.hostId, nowMs, {
        cpu: measured ? l.cpuUtilization : Number.NaN, memoryBytes: measured ? l.memoryUsedBytes : Number.NaN,
        ...(l.diskReadBps !== undefined ? { diskReadBps: l.diskReadBps } : {}),
        ...(l.diskWriteBps !== undefined ? { diskWriteBps: l.diskWriteBps } : {}),
        ...(l.netRxBps !== undefined ? { netRxBps: l.netRxBps } : {}),
        ...(l.netTxBps !== undefined ? { netTxBps: l.netTxBps } : {})
      })
      for (const vm of a.vms) {
        if (vm.owner !== a.hostId || vm.usage === undefined) continue
        const u = vm.usage
        this.add('vm', vm.id, vm.name, nowMs, {
          cpu: u.cpuCores, memoryBytes: u.memoryBytes,
          ...(u.diskReadBps !== undefined ? { diskReadBps: u.diskReadBps } : {}),
          ...(u.diskWriteBps !== undefined ? { diskWriteBps: u.diskWriteBps } : {}),
          ...(u.netRxBps !== undefined ? { netRxBps: u.netRxBps } : {}),
          ...(u.netTxBps !== undefined ? { netTxBps: u.netTxBps } : {}),
          ...(vm.replicaLagMs !== undefined ? { replicaLagS: vm.replicaLagMs / 1000 } : {})
        })
      }
    }
    for (const [key, s] of this.series) if (nowMs - s.lastMs > this.points * this.intervalMs) this.series.delete(key)
  }

  toWire (): meshvirt.v1.IUsageHistory {
    return {
      intervalMs: this.intervalMs,
      series: [...this.series.values()].map((s) => ({
        kind: s.kind, id: s.id, name: s.name, timesMs: [...s.timesMs],
        cpu: s.values.cpu ?? [], memoryBytes: s.values.memoryBytes ?? [],
        diskReadBps: s.values.diskReadBps ?? [], diskWriteBps: s.values.diskWriteBps ?? [],
        netRxBps: s.values.netRxBps ?? [], netTxBps: s.values.netTxBps ?? [], replicaLagS: s.values.replicaLagS ?? []
      }))
    }
  }

  private add (kind: 'host' | 'vm', id: string, name: string, nowMs: number, values: Partial<Record<HostKey, number>>): void {
    const key = `${kind}:${id}`
    let s = this.series.get(key)
    if (s === undefined) {
      s = { kind, id, name, timesMs: [], values: {}, lastMs: nowMs }
      this.series.set(key, s)
    }
    s.name = name
    s.lastMs = nowMs
    const n = s.timesMs.length
    s.timesMs.push(nowMs)
    for (const [k, v] of Object.entries(values) as Array<[HostKey, number]>) {
      // A value that appears late is NaN before (uPlot leaves a gap).
      const list = s.values[k] ??= Array<number>(n).fill(Number.NaN)
      list.push(v)
    }
    for (const list of Object.values(s.values)) if (list.length < s.timesMs.length) list.push(Number.NaN)
    if (s.timesMs.length > this.points) {
      s.timesMs.shift()
      for (const list of Object.values(s.values)) list.shift()
    }
  }
}
