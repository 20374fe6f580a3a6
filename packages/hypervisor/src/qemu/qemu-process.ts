import { readFile } from 'node:fs/promises'
import { EXIT_POLL_MS } from '../constants.js'
import { AbortedError } from '../errors.js'

/**
 * A QEMU process known only by its pid: after an agent restart it is not our child, so we cannot
 * wait() on it. Liveness is polled, and the pid is trusted only while /proc shows it is *our*
 * QEMU (its command line names the VM's pid file), so a recycled pid is never signalled.
 */
export class QemuProcess {
  constructor (readonly pid: number, private readonly pidFile: string) {}

  /** Read the pid file QEMU wrote with -pidfile; undefined when absent, empty or stale. */
  static async fromPidFile (pidFile: string): Promise<QemuProcess | undefined> {
    let text: string
    try { text = await readFile(pidFile, 'utf8') } catch { return undefined }
    const pid = Number.parseInt(text.trim(), 10)
    if (!Number.isInteger(pid) || pid <= 1) return undefined
    const proc = new QemuProcess(pid, pidFile)
    return await proc.isAlive() ? proc : undefined
  }

  async isAlive (): Promise<boolean> {
    try {
      const stat = await readFile(`/proc/${this.pid}/stat`, 'utf8')
      // Field 3 (after the parenthesised name) is the state; a zombie has already exited.
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false
      const cmdline = await readFile(`/proc/${this.pid}/cmdline`, 'utf8')
      return cmdline.split('\0').includes(this.pidFile)
    } catch {
      return false
    }
  }

  /** Send a signal; false when the process is already gone (or is no longer ours). */
  async signal (sig: NodeJS.Signals): Promise<boolean> {
    if (!await this.isAlive()) return false
    try { process.kill(this.pid, sig); return true } catch { return false }
  }

  /** Resolves true once the process is gone, false when `timeoutMs` passes first. */
  async waitForExit (timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (!await this.isAlive()) return true
      if (signal?.aborted === true) throw new AbortedError(`waiting for QEMU pid ${this.pid} aborted`)
      if (Date.now() >= deadline) return false
      await new Promise((resolve) => setTimeout(resolve, EXIT_POLL_MS))
    }
  }
}
