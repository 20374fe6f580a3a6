import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The watchdog process's entry, compiled next to this module (from sources under test: in dist/). */
function processEntry (): string {
  const here = fileURLToPath(new URL('./watchdog-process.js', import.meta.url))
  return existsSync(here) ? here : here.replace(/\/src\/fence\//, '/dist/fence/')
}

export interface FenceRecord { vmId: string, pid: number, fenceAt: number, at: number, killed: boolean }

/**
 * The agent's side of the fence watchdog (watchdog-process.ts): arms a deadline per running
 * replicated VM and keeps it moving while the lease is renewed; if the agent dies or stalls, the
 * watchdog kills the guest at the deadline anyway. One watchdog per data dir, started if none runs.
 */
export class FenceWatchdog {
  private pid: number | undefined
  private writes = 0
  private spawning: Promise<void> | undefined

  constructor (private readonly dir: string) {}

  /**
   * Adopts the watchdog already running for this dir; starts one only if deadlines are armed (a
   * previous agent's guests). Otherwise the process starts with the first deadline armed: a host
   * that leads no replicated VM runs no watchdog (a second node process, ~50 MB resident).
   */
  async start (): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    const existing = Number(await readFile(join(this.dir, 'watchdog.pid'), 'utf8').catch(() => '0'))
    if (existing > 0 && alive(existing)) { this.pid = existing; return }
    if ((await this.armed()).length > 0) await this.ensureRunning()
  }

  /** Starts the watchdog process unless it runs. */
  private async ensureRunning (): Promise<void> {
    if (this.pid !== undefined && alive(this.pid)) return
    this.spawning ??= (async () => {
      const child = spawn(process.execPath, [processEntry(), this.dir, String(process.pid)], { detached: true, stdio: 'ignore' })
      child.unref()
      this.pid = child.pid
      await writeFile(join(this.dir, 'watchdog.pid'), `${child.pid ?? 0}\n`)
    })().finally(() => { this.spawning = undefined })
    await this.spawning
  }

  /** The guest (QEMU `pid`) must be dead by `fenceAt` (epoch ms) unless armed again before. */
  async arm (vmId: string, pid: number, fenceAt: number): Promise<void> {
    await this.ensureRunning()
    const path = join(this.dir, `${vmId}.json`)
    // A unique temporary name: two arms of one VM may overlap (a renewal and the periodic check).
    const tmp = `${path}.${++this.writes}.tmp`
    await writeFile(tmp, JSON.stringify({ vmId, pid, fenceAt }))
    await rename(tmp, path)
  }

  async disarm (vmId: string): Promise<void> {
    await rm(join(this.dir, `${vmId}.json`), { force: true })
  }

  /** The deadlines armed now (left by a previous agent at start): vm id → pid and fence instant. */
  async armed (): Promise<Array<{ vmId: string, pid: number, fenceAt: number }>> {
    const out = []
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (!name.endsWith('.json')) continue
      const text = await readFile(join(this.dir, name), 'utf8').catch(() => undefined)
      if (text === undefined) continue
      try { out.push(JSON.parse(text) as { vmId: string, pid: number, fenceAt: number }) } catch { /* half-written by a dying agent: ignore */ }
    }
    return out
  }

  /** Fences the watchdog carried out (the agent records them, then clears them). */
  async fired (): Promise<FenceRecord[]> {
    const out: FenceRecord[] = []
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (!name.endsWith('.fenced')) continue
      const text = await readFile(join(this.dir, name), 'utf8').catch(() => undefined)
      if (text !== undefined) out.push(JSON.parse(text) as FenceRecord)
      await rm(join(this.dir, name), { force: true })
    }
    return out
  }

  /** Stop the watchdog process (tests; an agent leaves it running for its guests). */
  stopProcess (): void {
    if (this.pid !== undefined && alive(this.pid)) process.kill(this.pid, 'SIGTERM')
  }

  get processId (): number | undefined {
    return this.pid
  }
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}
