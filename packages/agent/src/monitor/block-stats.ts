/** Block I/O counters of one drive of a VM, since its QEMU started. */
export interface DriveStats {
  drive: string
  readBytes: number
  writeBytes: number
  readOps: number
  writeOps: number
}

/** What QEMU's monitor must offer: QemuHypervisor.monitor(id) gives it (one QMP client per VM). */
export interface QmpLike {
  execute: <T = unknown>(command: string, args?: Record<string, unknown>) => Promise<T>
}

const PERIPHERAL = /^\/machine\/peripheral\/([^/]+)\//

function nonEmpty (s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s
}

interface BlockStatsEntry {
  device?: string
  qdev?: string
  'node-name'?: string
  stats?: { rd_bytes?: number, wr_bytes?: number, rd_operations?: number, wr_operations?: number }
}

/**
 * `query-blockstats` of a running VM, as plain counters per drive. With `-blockdev` (our QEMU
 * driver) `device` is empty and `qdev` is `/machine/peripheral/<device id>/virtio-backend`, so a
 * drive is named by its legacy `-drive` id, else the guest device id, else its node name.
 */
export async function queryDriveStats (qmp: QmpLike): Promise<DriveStats[]> {
  const entries = await qmp.execute<BlockStatsEntry[]>('query-blockstats')
  const out: DriveStats[] = []
  for (const e of entries) {
    const drive = nonEmpty(e.device) ?? nonEmpty(PERIPHERAL.exec(e.qdev ?? '')?.[1]) ?? nonEmpty(e['node-name']) ?? nonEmpty(e.qdev) ?? ''
    if (drive === '' || e.stats === undefined) continue
    out.push({ drive, readBytes: e.stats.rd_bytes ?? 0, writeBytes: e.stats.wr_bytes ?? 0, readOps: e.stats.rd_operations ?? 0, writeOps: e.stats.wr_operations ?? 0 })
  }
  return out
}
