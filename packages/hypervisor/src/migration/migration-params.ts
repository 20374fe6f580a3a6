import { InvalidMigrationParamsError } from '../errors.js'
import type { MigrateOutOptions, TimeoutAction } from './types.js'

/**
 * Defaults of a live migration, chosen from `npm run bench -- migration` (bench/results/migration.json).
 * QEMU's own are a 128 MiB/s bandwidth cap (far below a LAN, and the tunnel applies its own
 * backpressure) and a 300 ms downtime limit without auto-converge (docs/design.md, "What QEMU 7.2 taught us"): with
 * those QEMU switches over as soon as it *estimates* the rest fits in 300 ms, and the README's demo
 * guest paused 61 ms. A 10 ms limit makes it send a few more (short) passes first, and auto-converge
 * throttles a guest that dirties memory faster than the link so that those passes converge at all
 * instead of running into the timeout: the bench measures both settings on the default path, same run
 * (`downtime_ms_256_disk` against `downtime_ms_256_disk_qemu_defaults`: 128 vs 317 ms median on the
 * TLS path, 10 rounds, load 11-33; the tunnel bench before it: 26.6 vs the demo's 61 ms). The cost is a busier
 * migration and, for a write-heavy guest, vCPUs slowed while it runs; `--downtime-ms 300
 * --no-auto-converge` restores QEMU's behaviour.
 */
export const MIGRATION_BANDWIDTH_BYTES_PER_SEC = 10 * 1024 ** 3
export const MIGRATION_DOWNTIME_LIMIT_MS = 10
export const MIGRATION_AUTO_CONVERGE = true
/**
 * multifd channels of the direct path (TLS encrypts each in its own QEMU thread, and QEMU 7.2 writes
 * a TLS record per page on each: more channels, more of that work in parallel). With AES-GCM
 * (migration-tls.ts), quiet 2-core machine, bench/results/migration.json of 2026-12-06: a 2 GiB idle
 * guest moved at 281.6 MB/s on 2 channels against 182.1 on one stream (a dirtying one 236.5 vs
 * 177.7), the 256 MiB guest paused 20.9 vs 19.8 ms (median of 10). A bare-QEMU study found 4
 * channels 3-17 % faster than 2 here; the bench does not measure 4 yet. The tunnel stays single-stream.
 */
export const MIGRATION_MULTIFD_CHANNELS = 2
export const MIGRATION_TIMEOUT_MS = 10 * 60_000
export const MIGRATION_PROGRESS_INTERVAL_MS = 250
/** QEMU refuses a downtime limit above 2,000 s; we refuse anything above a minute as a mistake. */
export const MAX_DOWNTIME_LIMIT_MS = 60_000
/** QEMU accepts 1..255 multifd channels; beyond a few per core they only add threads. */
export const MAX_MULTIFD_CHANNELS = 16

/** Refuse a channel count QEMU would refuse later, inside the migration. */
export function checkMultifdChannels (channels: number | undefined): void {
  if (channels === undefined) return
  check(Number.isInteger(channels) && channels >= 1 && channels <= MAX_MULTIFD_CHANNELS, `multifd channels ${channels} must be an integer in 1..${MAX_MULTIFD_CHANNELS}`)
}

/** What `onTimeout: 'continue'` lifts the downtime limit to. */
export const FORCED_DOWNTIME_LIMIT_MS = MAX_DOWNTIME_LIMIT_MS

export interface MigrationParams {
  bandwidthBytesPerSec: number
  downtimeLimitMs: number
  timeoutMs: number
  onTimeout: TimeoutAction
  autoConverge: boolean
  progressIntervalMs: number
}

/** Resolve and validate the caller's parameters once, before anything is touched. */
export function resolveMigrationParams (options: Partial<MigrateOutOptions>): MigrationParams {
  const params: MigrationParams = {
    bandwidthBytesPerSec: options.bandwidthBytesPerSec ?? MIGRATION_BANDWIDTH_BYTES_PER_SEC,
    downtimeLimitMs: options.downtimeLimitMs ?? MIGRATION_DOWNTIME_LIMIT_MS,
    timeoutMs: options.timeoutMs ?? MIGRATION_TIMEOUT_MS,
    onTimeout: options.onTimeout ?? 'cancel',
    autoConverge: options.autoConverge ?? MIGRATION_AUTO_CONVERGE,
    progressIntervalMs: options.progressIntervalMs ?? MIGRATION_PROGRESS_INTERVAL_MS
  }
  check(Number.isSafeInteger(params.bandwidthBytesPerSec) && params.bandwidthBytesPerSec >= 1024 * 1024,
    `bandwidth ${params.bandwidthBytesPerSec} B/s must be an integer ≥ 1 MiB/s`)
  check(Number.isInteger(params.downtimeLimitMs) && params.downtimeLimitMs >= 1 && params.downtimeLimitMs <= MAX_DOWNTIME_LIMIT_MS,
    `downtime limit ${params.downtimeLimitMs} ms must be an integer in 1..${MAX_DOWNTIME_LIMIT_MS}`)
  check(Number.isInteger(params.timeoutMs) && params.timeoutMs >= 100, `timeout ${params.timeoutMs} ms must be an integer ≥ 100`)
  check(params.onTimeout === 'cancel' || params.onTimeout === 'continue', `onTimeout ${String(params.onTimeout)} must be 'cancel' or 'continue'`)
  check(typeof params.autoConverge === 'boolean', 'autoConverge must be a boolean')
  check(Number.isInteger(params.progressIntervalMs) && params.progressIntervalMs >= 10, `progress interval ${params.progressIntervalMs} ms must be an integer ≥ 10`)
  return params
}

function check (ok: boolean, message: string): void {
  if (!ok) throw new InvalidMigrationParamsError(`${message}; fix the migration request`)
}
