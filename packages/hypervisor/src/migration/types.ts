/**
 * Live migration as its own small interface beside `Hypervisor` (the driver boundary keeps
 * optional features apart, as Nomad's drivers do). The agent drives the two halves:
 *
 *   destination  prepareIncoming(spec)   → sockets to feed (QEMU waits, paused, `-incoming defer -S`)
 *   source       migrateOut(id, sockets) → disk mirror, RAM, switchover; the source is left paused
 *   destination  completeIncoming(id)    → the guest runs there (or abortIncoming: nothing left behind)
 *   source       completeOutgoing(id)    → the old QEMU quits (or resumeOutgoing: the guest runs on)
 *
 * The source quits only when told, after the destination is confirmed running.
 */
import type { AbortOptions, VmInfo, VmSpec } from '../types.js'
import type { MigrationTls } from './migration-tls.js'

/** `mirror`: local disks are copied over NBD during the migration; `shared`: the files are already there. */
export type DiskMode = 'mirror' | 'shared'

export interface PrepareIncomingOptions extends AbortOptions {
  disks: DiskMode
  /**
   * Listen on TCP instead of the VM dir's unix sockets: QEMU straight to QEMU. With `tls` (the
   * agent's direct path) the stream and the NBD export require the pre-shared key; without it,
   * neither encrypted nor authenticated — only the benchmarks' plaintext baseline. `nbdPort` is
   * required when disks are mirrored.
   */
  tcp?: IncomingTcp
}

/** The TCP endpoints an incoming QEMU listens on, chosen by the caller (QEMU 7.2 cannot report an NBD server's port). */
export interface IncomingTcp {
  host: string
  port: number
  nbdPort?: number
  /** QEMU's TLS with this one-time pre-shared key (migration-tls.ts) on the stream and the NBD export. */
  tls?: MigrationTls
  /** multifd channels the source will open (must equal its `multifdChannels`); absent or 1: one stream. */
  multifdChannels?: number
}

/** What the destination hands back: where its paused QEMU listens (unix sockets unless prepared with `tcp`). */
export interface IncomingMigration {
  id: string
  /** QEMU's migration stream (`migrate-incoming`): a unix socket path, or `tcp:HOST:PORT`. */
  migrationSocket: string
  /** The NBD server exporting the empty disks writable, by their device name (path or `tcp:HOST:PORT`); absent without disks to mirror. */
  nbdSocket?: string
  /** Export names on that server (the disk names, e.g. `vda`). */
  nbdExports: string[]
}

/** What to do when `timeoutMs` passes before the switchover. */
export type TimeoutAction =
  /** `migrate_cancel`: the guest keeps running on the source. */
  | 'cancel'
  /** Lift the downtime limit so QEMU switches over at its next pass: completes, with a longer pause. */
  | 'continue'

export interface MigrateOutOptions extends AbortOptions {
  /**
   * Where the destination's migration stream is reachable: a unix socket path (its socket, or a
   * local tunnel entrance), or `tcp:HOST:PORT` for the direct, unencrypted comparison path.
   */
  migrationSocket: string
  /** Where its NBD server is reachable (path or `tcp:HOST:PORT`); required when the VM has disks and they are mirrored. */
  nbdSocket?: string
  /**
   * Disks the destination laid down without the shared base (it could not get it): mirrored whole,
   * even where this host's disk is a thin layer on a shared base (`DiskSpec.sharedBase`).
   */
  fullDisks?: string[]
  /** The destination's pre-shared key (it was prepared with the same `tls`): TCP addresses only. */
  tls?: MigrationTls
  /** RAM over this many multifd channels (the destination was prepared with the same number). */
  multifdChannels?: number
  /** QEMU's `max-bandwidth`, bytes/s. QEMU's default of 128 MiB/s is far below a LAN. */
  bandwidthBytesPerSec?: number
  /** QEMU's `downtime-limit`: switch over once the rest fits in this pause. */
  downtimeLimitMs?: number
  /** Whole operation (disk mirror + RAM) until the switchover. */
  timeoutMs?: number
  onTimeout?: TimeoutAction
  /** Throttle the guest's vCPUs when its dirty rate outruns the link (QEMU `auto-converge`). */
  autoConverge?: boolean
  /** Called about every `progressIntervalMs` while the migration runs. */
  onProgress?: (progress: MigrationProgress) => void
  progressIntervalMs?: number
}

export type MigrationPhase = 'disk-mirror' | 'ram' | 'switchover'

export interface MigrationProgress {
  id: string
  phase: MigrationPhase
  elapsedMs: number
  disk?: { copiedBytes: number, totalBytes: number }
  ram?: { transferredBytes: number, remainingBytes: number, totalBytes: number, dirtyPagesPerSec: number, mbps: number, passes: number }
}

export interface MigrationResult {
  id: string
  /** QEMU's own measure on the source: VM stopped → migration completed (device state and last pages). */
  downtimeMs: number
  /** QEMU's `total-time` of the RAM migration. */
  ramMs: number
  /** The disk mirror until it was in sync (0 without disks to mirror). */
  mirrorMs: number
  /** migrateOut() from call to return, everything included. */
  totalMs: number
  /** When the source's vCPUs stopped for the switchover (its QMP `STOP` event, epoch ms). */
  stoppedAt: number
  /** When QEMU reported the RAM and device state delivered (`MIGRATION completed`, epoch ms). */
  completedAt: number
  /** When the disk mirrors had completed (epoch ms; = completedAt without disks). */
  mirrorsDoneAt: number
  ramTransferredBytes: number
  diskBytes: number
  /** `timeoutMs` passed and `onTimeout: 'continue'` forced the switchover. */
  forced: boolean
}

export interface IncomingCompletion {
  info: VmInfo
  /** When the guest's vCPUs resumed on the destination (its QMP `RESUME` event, epoch ms). */
  resumedAt: number
}

export interface CompleteIncomingOptions extends AbortOptions {
  /**
   * A cold migration (the source never ran the guest): the disks are flushed and QEMU quits
   * instead of resuming; the VM arrives stopped.
   */
  stopped?: boolean
}

export interface LiveMigration {
  /** Destination: lay down the VM dir and disks, start QEMU paused and waiting for the stream. */
  prepareIncoming: (spec: VmSpec, options: PrepareIncomingOptions) => Promise<IncomingMigration>
  /** Destination, after the source's migrateOut() resolved: stop exporting, run the guest (or, cold, quit: it stays stopped). */
  completeIncoming: (id: string, options?: CompleteIncomingOptions) => Promise<IncomingCompletion>
  /** Destination, on any failure: kill the incoming QEMU and remove its files (partial disk). */
  abortIncoming: (id: string, options?: AbortOptions) => Promise<void>
  /** Source: mirror the disks, move RAM and device state. On failure the guest keeps running here, unless QEMU itself died: the error says which. */
  migrateOut: (id: string, options: MigrateOutOptions) => Promise<MigrationResult>
  /** Source, once the destination runs the guest: the paused QEMU quits (state `stopped`, reason `migrated`). */
  completeOutgoing: (id: string, options?: AbortOptions) => Promise<VmInfo>
  /** Source, when the destination failed after migrateOut() resolved: the paused guest runs here again. */
  resumeOutgoing: (id: string, options?: AbortOptions) => Promise<VmInfo>
}
