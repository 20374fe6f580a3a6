import { AbortedError, QmpError, QmpTimeoutError } from '../errors.js'
import type { QmpClient, QmpEvent } from '../qemu/qmp-client.js'

export interface EventWaitOptions {
  timeoutMs: number
  signal?: AbortSignal
}

/**
 * Keeps every QMP event from the moment it is created, so a wait started after the event came
 * still sees it: `BLOCK_JOB_READY` may fire before the `blockdev-mirror` reply is even read, and
 * the `MIGRATION completed` event before the caller starts waiting for it.
 */
export class QmpEventLog {
  private readonly logged: QmpEvent[] = []
  private readonly wakers = new Set<() => void>()
  private closed = false
  private readonly offEvent: () => void
  private readonly offClose: () => void

  constructor (qmp: QmpClient) {
    this.offEvent = qmp.onEvent((e) => { this.logged.push(e); this.wake() })
    this.offClose = qmp.onClose(() => { this.closed = true; this.wake() })
  }

  /** The first logged event matching `match`, waiting for it up to `timeoutMs`. Does not consume it. */
  async find (match: (e: QmpEvent) => boolean, what: string, options: EventWaitOptions): Promise<QmpEvent> {
    const deadline = Date.now() + options.timeoutMs
    for (;;) {
      const found = this.logged.find(match)
      if (found !== undefined) return found
      if (this.closed) throw new QmpError(`QMP connection closed while waiting for ${what} (QEMU exited?)`)
      if (options.signal?.aborted === true) throw new AbortedError(`waiting for ${what} aborted`)
      const left = deadline - Date.now()
      if (left <= 0) throw new QmpTimeoutError(`no ${what} within ${options.timeoutMs} ms`)
      await this.sleep(left, options.signal)
    }
  }

  /** Like find(), but resolves undefined at the timeout instead of throwing (for poll loops). */
  async poll (match: (e: QmpEvent) => boolean, timeoutMs: number, signal?: AbortSignal): Promise<QmpEvent | undefined> {
    const found = this.logged.find(match)
    if (found !== undefined || this.closed || signal?.aborted === true) return found
    await this.sleep(timeoutMs, signal)
    return this.logged.find(match)
  }

  /** Every event logged so far. */
  events (): readonly QmpEvent[] {
    return this.logged
  }

  get isClosed (): boolean {
    return this.closed
  }

  close (): void {
    this.offEvent()
    this.offClose()
    this.wake()
  }

  private async sleep (ms: number, signal?: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.wakers.delete(done)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.wakers.add(done)
      signal?.addEventListener('abort', done)
    })
  }

  private wake (): void {
    for (const w of [...this.wakers]) w()
  }
}

/** QMP event timestamps are the host's wall clock (g_get_real_time), in epoch ms here. */
export function eventTime (e: QmpEvent): number {
  return e.timestamp === undefined ? Date.now() : e.timestamp.seconds * 1000 + e.timestamp.microseconds / 1000
}
