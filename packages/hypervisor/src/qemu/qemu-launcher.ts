import { constants } from 'node:fs'
import { access, readFile, rename, rm } from 'node:fs/promises'
import { loadExeca } from '../lazy-execa.js'
import { LAUNCH_TIMEOUT_MS } from '../constants.js'
import { DiskFullError, ImageMissingError, KvmUnusableError, QemuLaunchError, QemuMissingError, WrongStateError } from '../errors.js'
import type { AbortOptions, VmPaths } from '../types.js'
import { buildQemuArgv, type QemuLaunch } from './argv.js'
import { QmpClient, type QmpCommandOptions } from './qmp-client.js'
import { QemuProcess } from './qemu-process.js'
import { checkTaps } from './taps.js'

export interface LaunchOptions extends AbortOptions {
  qemuBinary: string
  timeoutMs?: number
}

/**
 * Launch QEMU detached from the agent: `-daemonize` makes QEMU fork into its own session and the
 * parent exit only once the machine is initialised (QMP socket listening, pid file written), so
 * errors still reach us on the parent's stderr and an agent restart never takes the guest down.
 */
export async function launchQemu (launch: QemuLaunch, options: LaunchOptions): Promise<QemuProcess> {
  const { spec, paths } = launch
  if (spec.boot.kind === 'kernel') {
    for (const file of [spec.boot.kernel, spec.boot.initrd]) {
      if (file === undefined) continue
      try { await access(file, constants.R_OK) } catch {
        throw new ImageMissingError(`VM ${spec.id}: boot file ${file} is missing or unreadable (build the guest with scripts/build-guest)`)
      }
    }
  }
  await checkTaps(spec)
  if (launch.accel === 'kvm') {
    try { await access('/dev/kvm', constants.R_OK | constants.W_OK) } catch {
      throw new KvmUnusableError(`VM ${spec.id}: /dev/kvm is not usable by this user; run with accel tcg or fix its permissions`)
    }
  }
  // Leftovers of a previous run would make us trust a dead pid or fail to bind the socket.
  await rm(paths.pidFile, { force: true })
  await rm(paths.qmpSocket, { force: true })
  // QEMU truncates its log at start: keep the previous run's (the one a crash left) beside it.
  await rename(paths.qemuLog, `${paths.qemuLog}.1`).catch(() => {})
  const argv = buildQemuArgv({ ...launch, daemonize: true })
  const result = await (await loadExeca())(options.qemuBinary, argv, {
    cwd: paths.dir,
    reject: false,
    stdin: 'ignore',
    timeout: options.timeoutMs ?? LAUNCH_TIMEOUT_MS,
    cancelSignal: options.signal
  })
  if (result.failed) {
    // With -D, QEMU writes even its start-up errors to the log rather than to stderr.
    const logged = await readQemuLog(paths.qemuLog)
    throw launchError(options.qemuBinary, spec.id, { ...result, stderr: [String(result.stderr ?? '').trim(), logged].filter((t) => t !== '').join('\n') })
  }
  const proc = await QemuProcess.fromPidFile(paths.pidFile)
  if (proc === undefined) throw new QemuLaunchError(`VM ${spec.id}: QEMU exited right after start: ${await readQemuLog(paths.qemuLog) || `see ${paths.serialLog}`}`)
  return proc
}

function launchError (qemu: string, id: string, result: { code?: string, stderr?: unknown, shortMessage?: string, timedOut?: boolean }): Error {
  const stderr = String(result.stderr ?? '').trim()
  if (result.code === 'ENOENT') return new QemuMissingError(`${qemu} not found: install qemu-system-x86 (scripts/install-system-deps)`)
  if (/kvm/i.test(stderr) && /(failed to initialize|Could not access|permission denied)/i.test(stderr)) {
    return new KvmUnusableError(`VM ${id}: KVM cannot run here (${stderr}); use accel tcg (probeAccelerator decides)`)
  }
  if (/Failed to get "write" lock/.test(stderr)) {
    return new WrongStateError(`VM ${id}: its disk is in use by another QEMU (${stderr}); is the VM already running elsewhere?`)
  }
  if (/No space left on device/i.test(stderr)) return new DiskFullError(`VM ${id}: the data dir's file system is full (${stderr}); free space or use another data dir`)
  if (/No such file or directory|Could not open/i.test(stderr)) return new ImageMissingError(`VM ${id}: ${stderr}`)
  if (result.timedOut === true) return new QemuLaunchError(`VM ${id}: QEMU did not finish starting in time`)
  return new QemuLaunchError(`VM ${id}: QEMU failed to start: ${stderr || result.shortMessage}`)
}

/** The end of a VM's QEMU log (what QEMU said last), or '' when it has said nothing. */
export async function readQemuLog (path: string, maxBytes = 2048): Promise<string> {
  const text = (await readFile(path, 'utf8').catch(() => '')).trim()
  return text.length > maxBytes ? `…${text.slice(-maxBytes)}` : text
}

/**
 * The QMP connection to a VM's QEMU. If the monitor closes under a call (that QEMU exited), the
 * error carries the end of its log: why it went (an assertion, a signal) is there and nowhere else.
 */
export async function connectQmp (paths: Pick<VmPaths, 'qmpSocket' | 'qemuLog'>, options: QmpCommandOptions = {}): Promise<QmpClient> {
  return await QmpClient.connect(paths.qmpSocket, { ...options, lastWords: async () => await readQemuLog(paths.qemuLog, 1024) })
}
