/**
 * QEMU's `query-migrate` answer, reduced to what meshvirt reports (pure, table-tested).
 * https://www.qemu.org/docs/master/interop/qemu-qmp-ref.html#qapidoc-MigrationInfo
 */

export interface QemuMigrationInfo {
  status?: string
  'total-time'?: number
  downtime?: number
  'expected-downtime'?: number
  'setup-time'?: number
  'error-desc'?: string
  ram?: {
    transferred?: number
    remaining?: number
    total?: number
    'dirty-pages-rate'?: number
    mbps?: number
    'dirty-sync-count'?: number
  }
}

export interface MigrationStatus {
  status: string
  /** completed, failed or cancelled: nothing more will happen. */
  terminal: boolean
  ram: { transferredBytes: number, remainingBytes: number, totalBytes: number, dirtyPagesPerSec: number, mbps: number, passes: number }
  totalTimeMs?: number
  downtimeMs?: number
  error?: string
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled'])

export function migrationStatus (info: QemuMigrationInfo): MigrationStatus {
  const status = info.status ?? 'none'
  const ram = info.ram ?? {}
  const out: MigrationStatus = {
    status,
    terminal: TERMINAL.has(status),
    ram: {
      transferredBytes: ram.transferred ?? 0,
      remainingBytes: ram.remaining ?? 0,
      totalBytes: ram.total ?? 0,
      dirtyPagesPerSec: ram['dirty-pages-rate'] ?? 0,
      mbps: ram.mbps ?? 0,
      passes: ram['dirty-sync-count'] ?? 0
    }
  }
  if (info['total-time'] !== undefined) out.totalTimeMs = info['total-time']
  if (info.downtime !== undefined) out.downtimeMs = info.downtime
  if (info['error-desc'] !== undefined) out.error = info['error-desc']
  return out
}

/** Block mirror jobs as `query-block-jobs` lists them: `offset` of `len` copied, `ready` once in sync. */
export interface QemuBlockJob {
  device: string
  type?: string
  len: number
  offset: number
  ready?: boolean
  status?: string
}

export function mirrorProgress (jobs: QemuBlockJob[], ids: readonly string[]): { copiedBytes: number, totalBytes: number } {
  let copiedBytes = 0
  let totalBytes = 0
  for (const job of jobs) {
    if (!ids.includes(job.device)) continue
    copiedBytes += job.offset
    totalBytes += job.len
  }
  return { copiedBytes, totalBytes }
}
