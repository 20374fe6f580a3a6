import { POWER_BUTTON_REPEAT_MS, SIGKILL_TIMEOUT_MS } from '../constants.js'
import { QemuLaunchError } from '../errors.js'
import type { ExitReason } from '../types.js'
import type { QmpClient } from './qmp-client.js'
import type { QemuProcess } from './qemu-process.js'

export interface StopPlan {
  acpiTimeoutMs: number
  termTimeoutMs: number
  signal?: AbortSignal
}

/**
 * A running QEMU the driver holds: its process and its one QMP connection. Knows how the run ends:
 * the QMP socket closes when QEMU exits, then the pid is polled until gone, and the exit reason is
 * what we asked for (sigterm, sigkill, killed), else the guest's own shutdown, else a crash.
 */
export class VmAttachment {
  /** Resolves once QEMU has exited (undefined when the driver detached first). */
  readonly exited: Promise<ExitReason | undefined>
  private requested: ExitReason | undefined
  private guestShutdown = false
  private detaching = false

  constructor (readonly id: string, readonly proc: QemuProcess, readonly qmp: QmpClient) {
    qmp.onEvent((e) => {
      // SHUTDOWN carries guest=true when the guest powered off (ACPI honoured, or its own poweroff).
      if (e.event === 'SHUTDOWN' && e.data?.guest === true) this.guestShutdown = true
    })
    this.exited = new Promise((resolve) => {
      qmp.onClose(() => {
        if (this.detaching) { resolve(undefined); return }
        // The monitor closes when QEMU exits. If the process is still there after the wait, only the
        // connection broke: report no exit, so the VM stays running and the next call re-attaches.
        void proc.waitForExit(SIGKILL_TIMEOUT_MS * 2).then((gone) => { resolve(gone ? this.reason() : undefined) })
      })
    })
  }

  /**
   * ACPI power-down, then SIGTERM, then SIGKILL, each after its timeout (vitest-pool style
   * escalation). The power button is pressed again every POWER_BUTTON_REPEAT_MS while the guest
   * runs on: a guest still booting has nothing listening to it yet and drops the first press, so a
   * stop just after a start waited out the whole ACPI time-out (measured: 31.5 s for the test guest,
   * whose handler is up ~2 s into its boot; 1.2 s once booted).
   */
  async stop (plan: StopPlan): Promise<ExitReason> {
    const deadline = performance.now() + plan.acpiTimeoutMs
    for (;;) {
      try {
        await this.qmp.execute('system_powerdown', undefined, { signal: plan.signal })
      } catch { /* QMP gone: the escalation below still ends the process */ }
      const left = deadline - performance.now()
      if (await this.waitExit(Math.max(0, Math.min(left, POWER_BUTTON_REPEAT_MS)))) return await this.finalReason()
      if (left <= POWER_BUTTON_REPEAT_MS) break
    }
    this.requested = 'sigterm'
    await this.proc.signal('SIGTERM')
    if (await this.waitExit(plan.termTimeoutMs)) return await this.finalReason()
    return await this.kill('sigkill')
  }

  async kill (reason: ExitReason = 'killed'): Promise<ExitReason> {
    this.requested = reason
    await this.proc.signal('SIGKILL')
    if (!await this.waitExit(SIGKILL_TIMEOUT_MS)) throw new QemuLaunchError(`VM ${this.id}: QEMU pid ${this.proc.pid} survived SIGKILL`)
    return await this.finalReason()
  }

  /** Drop the QMP connection and leave the guest running (agent shutdown). */
  detach (): void {
    this.detaching = true
    this.qmp.close()
  }

  private reason (): ExitReason {
    if (this.requested !== undefined) return this.requested
    return this.guestShutdown ? 'guest-shutdown' : 'crashed'
  }

  private async finalReason (): Promise<ExitReason> {
    return (await this.exited) ?? this.reason()
  }

  private async waitExit (timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<false>((resolve) => { timer = setTimeout(() => { resolve(false) }, timeoutMs) })
    const done = await Promise.race([this.exited.then(() => true as const), timeout])
    clearTimeout(timer)
    return done
  }
}
