import { chmod, mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { InvalidMigrationParamsError } from '../errors.js'
import { hostCpu } from '../host-cpu.js'
import type { QmpClient } from '../qemu/qmp-client.js'

/**
 * QEMU's own TLS for the direct migration path (as libvirt and Proxmox do): a one-time 256-bit
 * pre-shared key, agreed by the two agents over the mesh, authenticates and encrypts the
 * migration stream (every multifd channel included) and the NBD disk mirror, straight between the
 * two QEMUs. A peer without the key fails the TLS handshake and gets nothing.
 *
 * `tls-creds-psk` reads `DIR/keys.psk` (`username:hexkey` lines). The server side (gnutls' PSK
 * file callback) reads it at each handshake, so the destination keeps it until the migration
 * ends; the client reads it when the object is created.
 * https://www.qemu.org/docs/master/system/tls.html#tls-psk
 */
export interface MigrationTls {
  /** The pre-shared key: 64 hex digits (256 bits), fresh for each migration. */
  pskHex: string
}

/** The QOM id of the credentials object, the same on both ends. */
export const MIGRATION_TLS_ID = 'mig-tls'
/** The PSK identity: any fixed name, the key is what authenticates. */
export const MIGRATION_PSK_USERNAME = 'meshvirt'
const PSK_HEX = /^[0-9a-f]{64}$/

export function checkPsk (tls: MigrationTls): void {
  if (!PSK_HEX.test(tls.pskHex)) throw new InvalidMigrationParamsError('migration TLS key must be 64 lower-case hex digits (256 bits); let the agent make one per migration')
}

/**
 * The gnutls priority of the credentials on a host with AES instructions. QEMU's default ("NORMAL",
 * plus its PSK key exchanges) makes a PSK session TLS 1.3 with CHACHA20-POLY1305, which gnutls
 * places before AES-GCM: 0.51 GB/s against AES-128-GCM's 4.59 GB/s here (`gnutls-cli
 * --benchmark-ciphers`), and the two QEMUs of a 2 GiB migration spent 8.3–9.4 CPU-s/GB against
 * 4.3–5.5 (docs/design.md, "What QEMU 7.2 taught us"). Without CHACHA20 the session is
 * TLS_AES_128_GCM_SHA256. A host without AES instructions keeps the default: CHACHA20 is the faster
 * cipher there, and both sides still share AES-GCM (it stays in NORMAL), so they always agree.
 */
export const MIGRATION_TLS_PRIORITY_AES = 'NORMAL:-CHACHA20-POLY1305'

/** Whether this CPU has AES instructions (`aes` in /proc/cpuinfo's flags); off Linux: no, keep QEMU's default. */
export function hostHasAes (): boolean {
  return hostCpu().flags.includes('aes')
}

/** The line QEMU's `tls-creds-psk` expects in `keys.psk`. */
export function pskFileContents (tls: MigrationTls): string {
  checkPsk(tls)
  return `${MIGRATION_PSK_USERNAME}:${tls.pskHex}\n`
}

/** The `object-add` arguments of the credentials; the client names its identity; `aes`: prefer AES-GCM. */
export function tlsCredsObject (endpoint: 'server' | 'client', dir: string, options: { aes?: boolean } = {}): Record<string, unknown> {
  return {
    'qom-type': 'tls-creds-psk', id: MIGRATION_TLS_ID, endpoint, dir,
    ...(endpoint === 'client' ? { username: MIGRATION_PSK_USERNAME } : {}),
    ...(options.aes === true ? { priority: MIGRATION_TLS_PRIORITY_AES } : {})
  }
}

/**
 * Write the key (directory 0700, file 0600, inside the VM dir) and create the credentials in QEMU.
 * Returns the directory, to be handed to removeTlsCreds() when the migration ends either way.
 */
export async function installTlsCreds (qmp: QmpClient, vmDir: string, endpoint: 'server' | 'client', tls: MigrationTls): Promise<string> {
  const dir = join(vmDir, endpoint === 'server' ? 'tls-in' : 'tls-out')
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await chmod(dir, 0o700)
  const file = join(dir, 'keys.psk')
  await writeFile(file, pskFileContents(tls), { mode: 0o600 })
  await chmod(file, 0o600)
  // A rolled-back earlier attempt on this QEMU may have left its object (same id) behind.
  try { await qmp.execute('object-del', { id: MIGRATION_TLS_ID }) } catch { /* none: the usual case */ }
  try {
    await qmp.execute('object-add', tlsCredsObject(endpoint, dir, { aes: hostHasAes() }))
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  return dir
}

/**
 * Remove the key file and, best effort, QEMU's object (a QEMU that quits or is killed drops it
 * anyway). The file goes first: that is the part that must never outlive the migration.
 */
export async function removeTlsCreds (qmp: QmpClient | undefined, dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true })
  if (qmp === undefined) return
  try { await qmp.execute('migrate-set-parameters', { 'tls-creds': '' }) } catch { /* QEMU gone or migration over */ }
  try { await qmp.execute('object-del', { id: MIGRATION_TLS_ID }) } catch { /* not there, or QEMU gone */ }
}
