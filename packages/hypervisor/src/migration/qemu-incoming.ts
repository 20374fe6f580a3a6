import { MigrationFailedError } from '../errors.js'
import type { QmpClient } from '../qemu/qmp-client.js'
import { migrationUri, nbdServerStartAddress, parseMigrationAddress } from './migration-address.js'
import { migrationStatus, type QemuMigrationInfo } from './migration-status.js'
import { QmpEventLog, eventTime } from './qmp-event-log.js'

export interface IncomingPlan {
  /** A unix socket path or `tcp:HOST:PORT` (see migration-address.ts). */
  migrationSocket: string
  /** Export these disks (nodes `disk-<name>`) writable over NBD on this socket (path or `tcp:HOST:PORT`). */
  nbd?: { socket: string, disks: string[] }
  /** The QOM id of TLS credentials already created (migration-tls.ts): the stream and NBD require them. */
  tlsCreds?: string
  /** multifd channels the source will open (the same number on both ends); absent: one stream. */
  multifdChannels?: number
}

/** How long completeIncoming waits for the destination's own view of the stream to say `completed`. */
const INCOMING_COMPLETE_TIMEOUT_MS = 10_000
const POLL_MS = 5

/**
 * Destination, QEMU started with `-incoming defer -S`: `return-path` (the source learns of a failed
 * load) and `late-block-activate` (the disks are not activated, nor locked, at the end of the stream
 * but at `cont`), the empty disks exported writable over NBD for the source's mirror, then the
 * stream is accepted on a unix socket (the mesh tunnel's exit) or on TCP (the direct path, with TLS
 * credentials; plaintext only as the benchmarks' baseline).
 */
export async function listenIncoming (qmp: QmpClient, plan: IncomingPlan): Promise<void> {
  const multifd = plan.multifdChannels !== undefined && plan.multifdChannels > 1
  const caps = { 'return-path': true, 'late-block-activate': true, events: true, ...(multifd ? { multifd: true } : {}) }
  await qmp.execute('migrate-set-capabilities', { capabilities: Object.entries(caps).map(([capability, state]) => ({ capability, state })) })
  const params = { ...(plan.tlsCreds !== undefined ? { 'tls-creds': plan.tlsCreds } : {}), ...(multifd ? { 'multifd-channels': plan.multifdChannels } : {}) }
  if (Object.keys(params).length > 0) await qmp.execute('migrate-set-parameters', params)
  if (plan.nbd !== undefined) {
    await qmp.execute('nbd-server-start', { addr: nbdServerStartAddress(parseMigrationAddress(plan.nbd.socket)), ...(plan.tlsCreds !== undefined ? { 'tls-creds': plan.tlsCreds } : {}) })
    for (const disk of plan.nbd.disks) {
      await qmp.execute('block-export-add', { type: 'nbd', id: `migrate-${disk}`, 'node-name': `disk-${disk}`, name: disk, writable: true })
    }
  }
  await qmp.execute('migrate-incoming', { uri: migrationUri(parseMigrationAddress(plan.migrationSocket)) })
}

/**
 * After the source reported `completed` and finished its mirrors: check the stream did load here,
 * drop the exports, then `cont`. Returns the moment the vCPUs resumed.
 */
export async function resumeIncoming (qmp: QmpClient, disks: readonly string[], signal?: AbortSignal): Promise<number> {
  await loadedIncoming(qmp, disks, signal)
  const log = new QmpEventLog(qmp)
  try {
    await qmp.execute('cont', undefined, { signal })
    return eventTime(await log.find((e) => e.event === 'RESUME', 'RESUME after cont', { timeoutMs: INCOMING_COMPLETE_TIMEOUT_MS, signal }))
  } finally {
    log.close()
  }
}

/**
 * A cold migration's end (the guest never ran at the source): the stream loaded, the exports
 * dropped, then QEMU quits instead of resuming. `quit` closes every block node, which flushes
 * what the mirror wrote (qcow2's table caches included); a SIGKILL would lose it.
 */
export async function quitIncoming (qmp: QmpClient, disks: readonly string[], signal?: AbortSignal): Promise<void> {
  await loadedIncoming(qmp, disks, signal)
  await qmp.execute('quit', undefined, { signal }).catch(() => { /* the connection may close before the answer */ })
}

/** The source reported `completed`: wait until the stream has loaded here, then stop the NBD exports. */
async function loadedIncoming (qmp: QmpClient, disks: readonly string[], signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + INCOMING_COMPLETE_TIMEOUT_MS
  for (;;) {
    const status = migrationStatus(await qmp.execute<QemuMigrationInfo>('query-migrate', undefined, { signal }))
    if (status.status === 'completed') break
    if (status.terminal || Date.now() > deadline) {
      throw new MigrationFailedError(`incoming migration is ${status.status}${status.error !== undefined ? ` (${status.error})` : ''}; abort it on this host`)
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
  // nbd-server-stop closes every NBD export and waits for them to be gone, the source's client
  // included (it may not have hung up yet): one command for all the disks, inside the pause.
  if (disks.length > 0) await qmp.execute('nbd-server-stop', undefined, { signal })
}
