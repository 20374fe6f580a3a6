import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { mustRun } from './runner.js'
import type { CommandRunner } from './runner.js'
import { HostNetworkError } from './types.js'

/**
 * Finding, starting and stopping a network's dnsmasq. It daemonises and writes a pid file; the
 * driver re-finds it after an agent restart by that file, trusting the pid only if /proc says it is
 * still a dnsmasq serving the same bridge (pids are reused).
 */

/** What the driver needs of the process table; injectable so tests never signal real processes. */
export interface ProcessTable {
  /** Where `<pid>/cmdline` is read, normally /proc. */
  proc: string
  kill: (pid: number, signal: NodeJS.Signals | 0) => void
}

export const realProcesses: ProcessTable = { proc: '/proc', kill: (pid, signal) => process.kill(pid, signal) }

const START_TIMEOUT_MS = 3_000
const STOP_TIMEOUT_MS = 2_000
const POLL_MS = 20

async function readPid (pidFile: string): Promise<number | undefined> {
  const text = await readFile(pidFile, 'utf8').catch(() => '')
  const pid = Number(text.trim())
  return Number.isInteger(pid) && pid > 1 ? pid : undefined
}

/** A process's argv, or undefined when it is gone (a zombie has an empty cmdline: gone too). */
export async function argvOf (pid: number, table: ProcessTable): Promise<string[] | undefined> {
  const raw = await readFile(join(table.proc, String(pid), 'cmdline'), 'utf8').catch(() => '')
  if (raw === '') return undefined
  return raw.replace(/\0$/, '').split('\0')
}

export interface RunningDnsmasq {
  pid: number
  argv: string[]
}

/** The live dnsmasq the pid file names, if it serves `bridge`. */
export async function findDnsmasq (pidFile: string, bridge: string, table: ProcessTable): Promise<RunningDnsmasq | undefined> {
  const pid = await readPid(pidFile)
  if (pid === undefined) return undefined
  const argv = await argvOf(pid, table)
  if (argv === undefined) return undefined
  if (!(argv[0] ?? '').endsWith('dnsmasq') || !argv.includes(`--interface=${bridge}`)) return undefined
  return { pid, argv }
}

/** Starts dnsmasq (it daemonises; its exit status says whether it could bind) and waits for its pid file. */
export async function startDnsmasq (run: CommandRunner, binary: string, args: string[], pidFile: string, bridge: string, table: ProcessTable): Promise<number> {
  await rm(pidFile, { force: true })
  await mustRun(run, binary, args)
  const deadline = Date.now() + START_TIMEOUT_MS
  while (Date.now() < deadline) {
    const found = await findDnsmasq(pidFile, bridge, table)
    if (found !== undefined) return found.pid
    await sleep(POLL_MS)
  }
  throw new HostNetworkError(`dnsmasq for ${bridge} started but ${pidFile} names no live dnsmasq after ${START_TIMEOUT_MS} ms`)
}

/** SIGTERM, then SIGKILL after a bound; returns when the process is gone. */
export async function stopProcess (pid: number, table: ProcessTable): Promise<void> {
  const alive = async (): Promise<boolean> => (await argvOf(pid, table)) !== undefined
  const signal = (s: NodeJS.Signals): void => {
    try { table.kill(pid, s) } catch { /* already gone */ }
  }
  signal('SIGTERM')
  const deadline = Date.now() + STOP_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (!(await alive())) return
    await sleep(POLL_MS)
  }
  signal('SIGKILL')
}

export function hup (pid: number, table: ProcessTable): void {
  try { table.kill(pid, 'SIGHUP') } catch { /* gone: supervision restarts it */ }
}
