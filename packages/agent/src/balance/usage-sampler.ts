import type { VmUsage } from '@meshvirt/mesh'

/** What the sampler reads of one running guest (the hypervisor's `stats`; I/O when the driver measures it). */
export interface GuestCounters {
  cpuSeconds: number
  uptimeSeconds: number
  rssBytes: number
  diskReadBytes?: number
  diskWriteBytes?: number
  netRxBytes?: number
  netTxBytes?: number
}

interface Last { counters: GuestCounters, usage: VmUsage }

const IO_KEYS = [['diskReadBytes', 'diskReadBps'], ['diskWriteBytes', 'diskWriteBps'], ['netRxBytes', 'netRxBps'], ['netTxBytes', 'netTxBps']] as const

/**
 * Per-VM usage from successive counter readings: CPU cores = Δ CPU seconds ÷ Δ uptime (the average
 * since start on the first reading), memory = resident set. Pure arithmetic; the part feeds it.
 */
export class UsageSampler {
  private readonly last = new Map<string, Last>()

  /** Records a reading; answers true when the VM's usage changed enough to tell the cluster. */
  record (vmId: string, c: GuestCounters): boolean {
    const prev = this.last.get(vmId)
    let cpuCores: number
    if (prev === undefined || c.uptimeSeconds <= prev.counters.uptimeSeconds || c.cpuSeconds < prev.counters.cpuSeconds) {
      cpuCores = c.uptimeSeconds > 0 ? c.cpuSeconds / c.uptimeSeconds : 0
    } else {
      cpuCores = (c.cpuSeconds - prev.counters.cpuSeconds) / (c.uptimeSeconds - prev.counters.uptimeSeconds)
    }
    const usage: VmUsage = { cpuCores: Math.max(0, cpuCores), memoryBytes: Math.max(1, Math.round(c.rssBytes)) }
    // I/O rates need two readings of the same run.
    const seconds = prev === undefined ? 0 : c.uptimeSeconds - prev.counters.uptimeSeconds
    for (const [counter, rate] of IO_KEYS) {
      const now = c[counter]
      const before = prev?.counters[counter]
      if (now !== undefined && before !== undefined && seconds > 0 && now >= before) usage[rate] = (now - before) / seconds
    }
    this.last.set(vmId, { counters: c, usage })
    return prev === undefined || changed(prev.usage, usage)
  }

  usage (vmId: string): VmUsage | undefined {
    return this.last.get(vmId)?.usage
  }

  /** Forget VMs no longer running here. */
  keepOnly (vmIds: ReadonlySet<string>): void {
    for (const id of this.last.keys()) if (!vmIds.has(id)) this.last.delete(id)
  }
}

/** A tenth of a core or a tenth of the memory: less is noise not worth an advert. */
function changed (a: VmUsage, b: VmUsage): boolean {
  return Math.abs(a.cpuCores - b.cpuCores) >= 0.1 || Math.abs(a.memoryBytes - b.memoryBytes) > 0.1 * Math.max(a.memoryBytes, b.memoryBytes)
}
