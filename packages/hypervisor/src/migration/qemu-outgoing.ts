import { AbortedError, MigrationFailedError, MigrationTimeoutError } from '../errors.js'
import type { QmpClient, QmpEvent } from '../qemu/qmp-client.js'
import { FORCED_DOWNTIME_LIMIT_MS, type MigrationParams } from './migration-params.js'
import { migrationUri, nbdBlockdevServer, parseMigrationAddress } from './migration-address.js'
import { migrationStatus, mirrorProgress, type MigrationStatus, type QemuBlockJob, type QemuMigrationInfo } from './migration-status.js'
import { QmpEventLog, eventTime } from './qmp-event-log.js'
import type { MigrationPhase, MigrationProgress, MigrationResult } from './types.js'

export interface OutgoingPlan {
  id: string
  /** A unix socket path or `tcp:HOST:PORT` (see migration-address.ts). */
  migrationSocket: string
  nbdSocket?: string
  /** Disk names to mirror (their nodes are `disk-<name>`, exported under `<name>` by the destination). */
  disks: string[]
  /** Of those, the disks on a base the destination shares: only their top layer is mirrored. */
  topOnly?: readonly string[]
  params: MigrationParams
  /** QOM id of TLS credentials already created (migration-tls.ts): the stream and the NBD client use them. */
  tlsCreds?: string
  /** multifd channels for RAM (the destination was told the same number); absent or 1: one stream. */
  multifdChannels?: number
  onProgress?: (progress: MigrationProgress) => void
  signal?: AbortSignal
}

/** Bound on each clean-up step after a failure; the source must come back quickly either way. */
const CLEANUP_TIMEOUT_MS = 10_000
const FINAL_STATUS_RETRIES = 20
const FINAL_STATUS_RETRY_MS = 5
/** Bound on the block-job-cancel that completes a ready mirror after the switchover. */
const MIRROR_COMPLETE_TIMEOUT_MS = 30_000

/**
 * The source half of a live migration over QMP, following docs/design.md's QEMU facts: `return-path` (else a
 * failed load on the destination still reports `completed` here), disks mirrored over NBD first
 * (`blockdev-mirror sync=full`, or `top` for a disk whose base the destination shares; wait for `BLOCK_JOB_READY`), then `migrate`
 * with `pause-before-switchover`: once the vCPUs stopped, the ready mirrors are cancelled, which
 * completes them without pivot, and only then does the switchover go on (`migrate-continue`). The
 * switchover makes the disks inactive; a mirror still writing to its NBD node then crashes QEMU 7.2
 * (`bdrv_co_write_req_prepare: !(bs->open_flags & BDRV_O_INACTIVE)`, seen here when mirrors were
 * completed alongside the switchover). Any failure cancels what was started and leaves the guest
 * running here.
 */
export class OutgoingMigration {
  private readonly started = Date.now()
  private readonly deadline: number
  private readonly log: QmpEventLog
  private readonly jobs: string[]
  private nodesAdded: string[] = []
  private jobsStarted: string[] = []
  /** block-job-cancel already sent for the mirrors (at the switchover's STOP). */
  private cancelling: Promise<unknown> | undefined
  /** Bytes the completed mirrors copied (once they are done). */
  private mirroredBytes = 0
  /** migrate-continue sent: QEMU leaves `pre-switchover` in its own time, and refuses a second one. */
  private continued = false
  private migrating = false
  private forced = false
  private phase: MigrationPhase = 'disk-mirror'
  /** The guest ran when the migration began; false: a cold migration's paused QEMU (never `cont` it). */
  private guestRan = true

  constructor (private readonly qmp: QmpClient, private readonly plan: OutgoingPlan) {
    this.deadline = this.started + plan.params.timeoutMs
    this.log = new QmpEventLog(qmp)
    this.jobs = plan.disks.map((d) => `migrate-${d}`)
  }

  async run (): Promise<MigrationResult> {
    try {
      await this.configure()
      const mirrorMs = await this.mirrorDisks()
      this.phase = 'ram'
      this.migrating = true
      await this.qmp.execute('migrate', { uri: migrationUri(parseMigrationAddress(this.plan.migrationSocket)) })
      const final = await this.waitForMigration()
      this.phase = 'switchover'
      const completed = this.log.events().find((e) => e.event === 'MIGRATION' && e.data?.status === 'completed')
      const diskBytes = await this.completeMirrors()
      const mirrorsDoneAt = Date.now()
      const stop = this.log.events().find((e) => e.event === 'STOP')
      return {
        id: this.plan.id,
        downtimeMs: final.downtimeMs ?? 0,
        ramMs: final.totalTimeMs ?? 0,
        mirrorMs,
        totalMs: Date.now() - this.started,
        stoppedAt: stop === undefined ? Date.now() : eventTime(stop),
        completedAt: completed === undefined ? mirrorsDoneAt : eventTime(completed),
        mirrorsDoneAt,
        ramTransferredBytes: final.ram.transferredBytes,
        diskBytes,
        forced: this.forced
      }
    } catch (err) {
      await this.rollBack()
      throw this.failure(err, await this.sourceAfterRollBack())
    } finally {
      this.log.close()
    }
  }

  private async configure (): Promise<void> {
    const { params } = this.plan
    this.guestRan = (await this.qmp.execute<{ status: string }>('query-status')).status === 'running'
    const channels = this.plan.multifdChannels ?? 1
    // Set either way: an earlier attempt on this QEMU (rolled back) may have left them on.
    const caps = { 'return-path': true, events: true, 'auto-converge': params.autoConverge, multifd: channels > 1, 'pause-before-switchover': this.plan.disks.length > 0 }
    await this.qmp.execute('migrate-set-capabilities', { capabilities: Object.entries(caps).map(([capability, state]) => ({ capability, state })) })
    await this.qmp.execute('migrate-set-parameters', {
      'max-bandwidth': params.bandwidthBytesPerSec, 'downtime-limit': params.downtimeLimitMs, 'tls-creds': this.plan.tlsCreds ?? '',
      ...(channels > 1 ? { 'multifd-channels': channels } : {})
    })
  }

  /** Mirror every disk into the destination's NBD export until in sync; returns the time it took. */
  private async mirrorDisks (): Promise<number> {
    if (this.plan.disks.length === 0) return 0
    const { nbdSocket } = this.plan
    if (nbdSocket === undefined) throw new MigrationFailedError(`VM ${this.plan.id} has disks to mirror but no NBD socket was given`)
    const t0 = Date.now()
    for (const disk of this.plan.disks) {
      const node = `migrate-${disk}`
      await this.qmp.execute('blockdev-add', { driver: 'nbd', 'node-name': node, server: nbdBlockdevServer(parseMigrationAddress(nbdSocket)), export: disk, ...(this.plan.tlsCreds !== undefined ? { 'tls-creds': this.plan.tlsCreds } : {}) })
      this.nodesAdded.push(node)
      await this.qmp.execute('blockdev-mirror', { 'job-id': node, device: `disk-${disk}`, target: node, sync: this.plan.topOnly?.includes(disk) === true ? 'top' : 'full' })
      this.jobsStarted.push(node)
    }
    const ready = new Set<string>()
    while (ready.size < this.jobs.length) {
      await this.checkTimeout()
      const event = await this.log.poll((e) => isJobEvent(e, 'BLOCK_JOB_READY', this.jobs) && !ready.has(jobOf(e)), this.plan.params.progressIntervalMs, this.plan.signal)
      if (event !== undefined) { ready.add(jobOf(event)); continue }
      const failed = this.log.events().find((e) => isJobEvent(e, 'BLOCK_JOB_COMPLETED', this.jobs) || isJobEvent(e, 'BLOCK_JOB_CANCELLED', this.jobs))
      if (failed !== undefined) throw new MigrationFailedError(`disk mirror ${jobOf(failed)} ended before it was in sync: ${String(failed.data?.error ?? failed.event)}`)
      await this.report()
    }
    return Date.now() - t0
  }

  private async waitForMigration (): Promise<MigrationStatus> {
    for (;;) {
      await this.checkTimeout()
      // The MIGRATION event wakes us at once: every ms between completion and the destination's
      // `cont` is guest pause.
      await this.log.poll((e) => (e.event === 'MIGRATION' && ['completed', 'failed', 'cancelled'].includes(String(e.data?.status))) ||
        (e.event === 'MIGRATION' && e.data?.status === 'pre-switchover' && !this.continued) ||
        (e.event === 'STOP' && this.cancelling === undefined && this.jobsStarted.length > 0), this.plan.params.progressIntervalMs, this.plan.signal)
      this.cancelMirrorsAtStop()
      const status = migrationStatus(await this.qmp.execute<QemuMigrationInfo>('query-migrate'))
      if (status.status === 'completed') return await this.finalStatus(status)
      if (status.status === 'pre-switchover' && !this.continued) {
        // Paused before the device state goes and the disks turn inactive: the mirrors finish first.
        this.phase = 'switchover'
        await this.completeMirrors()
        this.continued = true
        await this.qmp.execute('migrate-continue', { state: 'pre-switchover' })
        continue
      }
      if (status.terminal) throw new MigrationFailedError(`migration of VM ${this.plan.id} ${status.status}: ${status.error ?? 'no reason given'}`)
      this.emit(status)
    }
  }

  /**
   * QEMU announces `completed` a moment before it computes the run's total time and downtime (they
   * read 0 until then): ask again briefly rather than report a 0 ms downtime.
   */
  private async finalStatus (status: MigrationStatus): Promise<MigrationStatus> {
    for (let i = 0; i < FINAL_STATUS_RETRIES && (status.totalTimeMs ?? 0) === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, FINAL_STATUS_RETRY_MS))
      status = migrationStatus(await this.qmp.execute<QemuMigrationInfo>('query-migrate'))
    }
    return status
  }

  /**
   * The vCPUs stopped for the switchover: the guest writes no more, so the mirrors may complete now.
   * QEMU runs the command once the migration thread pauses before the switchover (and lets go of
   * the main loop), which waits in `pre-switchover` for them. Should the migration still fail, the
   * guest resumes here and the mirrors were to go anyway.
   */
  private cancelMirrorsAtStop (): void {
    if (this.cancelling !== undefined || this.jobsStarted.length === 0) return
    // A guest that never ran has no STOP to wait for: its disks do not change.
    if (this.guestRan && this.log.events().find((e) => e.event === 'STOP') === undefined) return
    this.cancelling = Promise.all(this.jobsStarted.map(async (device) => await this.qmp.execute('block-job-cancel', { device })))
    this.cancelling.catch(() => { /* completeMirrors or the roll-back reports what went wrong */ })
  }

  /** Cancelling a ready mirror completes it without pivot: the destination holds a point-in-time copy. */
  private async completeMirrors (): Promise<number> {
    if (this.jobsStarted.length === 0) return this.mirroredBytes
    let bytes = 0
    this.cancelMirrorsAtStop()
    await this.cancelling
    for (const job of this.jobsStarted) {
      const done = await this.log.find((e) => isJobEvent(e, 'BLOCK_JOB_COMPLETED', [job]) || isJobEvent(e, 'BLOCK_JOB_CANCELLED', [job]),
        `completion of disk mirror ${job}`, { timeoutMs: MIRROR_COMPLETE_TIMEOUT_MS })
      if (done.event !== 'BLOCK_JOB_COMPLETED' || done.data?.error !== undefined) {
        throw new MigrationFailedError(`disk mirror ${job} did not complete after the switchover: ${String(done.data?.error ?? done.event)}`)
      }
      bytes += Number(done.data?.len ?? 0)
    }
    this.jobsStarted = []
    this.mirroredBytes = bytes
    // The NBD nodes stay until the hand-over: removing one flushes it, a round trip to the
    // destination inside the guest's pause. The source QEMU quits (completeOutgoing) or removes
    // them when the guest resumes here (resumeOutgoing, see removeMigrationNodes).
    this.nodesAdded = []
    return bytes
  }

  private async checkTimeout (): Promise<void> {
    if (this.plan.signal?.aborted === true) throw new AbortedError(`migration of VM ${this.plan.id} aborted by the caller`)
    if (Date.now() < this.deadline || this.forced) return
    if (this.plan.params.onTimeout === 'cancel') {
      throw new MigrationTimeoutError(`migration of VM ${this.plan.id} did not switch over within ${this.plan.params.timeoutMs} ms and was cancelled; raise the bandwidth or timeout, or enable auto-converge`)
    }
    // 'continue': a mirror cannot be forced, so the limit is lifted now and applies once RAM moves.
    this.forced = true
    await this.qmp.execute('migrate-set-parameters', { 'downtime-limit': FORCED_DOWNTIME_LIMIT_MS })
  }

  private async report (): Promise<void> {
    if (this.plan.onProgress === undefined) return
    const jobs = await this.qmp.execute<QemuBlockJob[]>('query-block-jobs')
    this.plan.onProgress({ id: this.plan.id, phase: this.phase, elapsedMs: Date.now() - this.started, disk: mirrorProgress(jobs, this.jobs) })
  }

  private emit (status: MigrationStatus): void {
    this.plan.onProgress?.({ id: this.plan.id, phase: this.phase, elapsedMs: Date.now() - this.started, ram: status.ram })
  }

  /** Undo in reverse: stop the RAM stream, drop the mirrors and NBD nodes, make sure the guest runs. */
  private async rollBack (): Promise<void> {
    const quiet = async (fn: () => Promise<unknown>): Promise<void> => { try { await fn() } catch { /* best effort: the next step still matters */ } }
    if (this.log.isClosed) return
    if (this.migrating) {
      await quiet(async () => await this.qmp.execute('migrate_cancel'))
      await quiet(async () => await this.log.find((e) => e.event === 'MIGRATION' && ['failed', 'cancelled', 'completed'].includes(String(e.data?.status)), 'the migration to stop', { timeoutMs: CLEANUP_TIMEOUT_MS }))
    }
    for (const job of this.jobsStarted) {
      await quiet(async () => await this.qmp.execute('block-job-cancel', { device: job, force: true }))
      await quiet(async () => await this.log.find((e) => isJobEvent(e, 'BLOCK_JOB_CANCELLED', [job]) || isJobEvent(e, 'BLOCK_JOB_COMPLETED', [job]), `cancel of ${job}`, { timeoutMs: CLEANUP_TIMEOUT_MS }))
    }
    for (const node of this.nodesAdded) await quiet(async () => await this.qmp.execute('blockdev-del', { 'node-name': node }))
    // QEMU restarts a guest whose migration failed after the stop, but not in every path: check.
    // A guest that was not running (a cold migration's source) stays so.
    if (!this.guestRan) return
    await quiet(async () => {
      const status = await this.qmp.execute<{ status: string }>('query-status')
      if (status.status !== 'running') await this.qmp.execute('cont')
    })
  }

  /**
   * What the roll-back left on the source, asked rather than assumed: a QEMU that crashed during
   * the attempt (it can, on a block-layer assertion) has no guest to return to.
   */
  private async sourceAfterRollBack (): Promise<string> {
    if (this.qmp.isClosed) return 'the source QEMU exited during the attempt: the guest no longer runs anywhere'
    try {
      const { status } = await this.qmp.execute<{ status: string }>('query-status')
      if (status === 'running') return 'the guest still runs on the source'
      return this.guestRan ? `the guest is ${status} on the source and did not resume` : `the guest stays ${status} on the source`
    } catch (err) {
      return `the source's state is unknown (${err instanceof Error ? err.message : String(err)})`
    }
  }

  private failure (err: unknown, source: string): Error {
    const code = (err as { code?: string }).code
    const reason = err instanceof Error ? err.message : String(err)
    if (code === MigrationTimeoutError.code || code === AbortedError.code) return err as Error
    if (code === MigrationFailedError.code) return new MigrationFailedError(`${reason}; ${source}`, { cause: err })
    return new MigrationFailedError(`migration of VM ${this.plan.id} failed: ${reason}; ${source}`, { cause: err })
  }
}

/** Remove the NBD nodes a completed migration left on a source that now resumes its guest. */
export async function removeMigrationNodes (qmp: QmpClient, disks: readonly string[]): Promise<void> {
  for (const disk of disks) {
    try { await qmp.execute('blockdev-del', { 'node-name': `migrate-${disk}` }) } catch { /* not there: nothing to remove */ }
  }
}

function jobOf (e: QmpEvent): string {
  return String(e.data?.device ?? e.data?.id ?? '')
}

function isJobEvent (e: QmpEvent, name: string, jobs: readonly string[]): boolean {
  return e.event === name && jobs.includes(jobOf(e))
}
