import { readFile } from 'node:fs/promises'
import { EXIT_POLL_MS } from '../constants.js'
import { AbortedError } from '../errors.js'

/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100

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

  /** Still our QEMU: a live process whose command line names our pid file (not a reused pid). */
  async isAlive (): Promise<boolean> {
    if (!await this.exists()) return false
    try {
      const cmdline = await readFile(`/proc/${this.pid}/cmdline`, 'utf8')
      return cmdline.split('\0').includes(this.pidFile)
    } catch {
      return false
    }
  }

  /** The pid is still a process that has not finished exiting (this object was made for a verified QEMU). */
  private async exists (): Promise<boolean> {
    try {
      const stat = await readFile(`/proc/${this.pid}/stat`, 'utf8')
      // Field 3 (after the parenthesised name) is the state; a zombie has already exited.
      return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
    } catch {
      return false
    }
  }

  /**
   * RSS, CPU time and the process's age from /proc; undefined once the process is gone. The age, not
   * the VM's start record, is what CPU time since the process began must be divided by.
   */
  async usage (): Promise<{ rssBytes: number, cpuSeconds: number, ageSeconds: number } | undefined> {
    try {
      const [status, stat, uptime] = await Promise.all([readFile(`/proc/${this.pid}/status`, 'utf8'), readFile(`/proc/${this.pid}/stat`, 'utf8'), readFile('/proc/uptime', 'utf8')])
      const rssKiB = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0)
      // Fields after the name: state is [0], utime [11], stime [12], in clock ticks (100 Hz on Linux).
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const ticks = Number(fields[11] ?? 0) + Number(fields[12] ?? 0)
      // starttime [19]: clock ticks after boot; /proc/uptime: seconds since boot.
      const ageSeconds = Math.max(0, Number(uptime.split(' ')[0] ?? 0) - Number(fields[19] ?? 0) / CLOCK_TICKS_PER_SECOND)
      return { rssBytes: rssKiB * 1024, cpuSeconds: ticks / CLOCK_TICKS_PER_SECOND, ageSeconds }
    } catch {
      return undefined
    }
  }

  /** Send a signal; false when the process is already gone (or is no longer ours). */
  async signal (sig: NodeJS.Signals): Promise<boolean> {
    if (!await this.isAlive()) return false
    try { process.kill(this.pid, sig); return true } catch { return false }
  }

  /**
   * Resolves true once the process is gone, false when `timeoutMs` passes first. Gone means no
   * longer in /proc (or a zombie), not isAlive()'s identity check: a process on its way out has
   * released its memory and with it its cmdline, yet still holds its files (the disk image's lock)
   * for a moment — seen here under load right after SIGKILL.
   */
  async waitForExit (timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (!await this.exists()) return true
      if (signal?.aborted === true) throw new AbortedError(`waiting for QEMU pid ${this.pid} aborted`)
      if (Date.now() >= deadline) return false
      await new Promise((resolve) => setTimeout(resolve, EXIT_POLL_MS))
    }
  }
}
