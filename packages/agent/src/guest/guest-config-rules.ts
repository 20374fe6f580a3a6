import type { meshvirt } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'

/** cloud-init's cc_ssh has no limit; this keeps a spec (gossiped with the VM) small. */
export const MAX_SSH_KEYS = 16
export const MAX_USER_DATA_BYTES = 64 * 1024
/** RFC 1123 labels: 1–63 letters, digits or '-', not starting or ending with '-'. */
const HOSTNAME_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/
/** `[options] type base64 [comment]` as in authorized_keys; the type names OpenSSH knows. */
const OPENSSH_KEY = /^(?:\S+\s+)?(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)\s+[A-Za-z0-9+/]+={0,2}(\s+.*)?$/

/** Checks a spec's `guest`; throws INVALID_ARGUMENT saying what to fix. */
export function validateGuestConfig (guest: meshvirt.v1.IGuestConfig | null | undefined): void {
  const bad = (field: string, msg: string): never => { throw new ControlError('INVALID_ARGUMENT', msg, { field: `guest.${field}` }) }
  if (guest == null) return
  const hostname = guest.hostname ?? ''
  if (hostname !== '') {
    if (hostname.length > 253) bad('hostname', `--hostname is ${hostname.length} characters; at most 253`)
    for (const label of hostname.split('.')) {
      if (!HOSTNAME_LABEL.test(label)) bad('hostname', `--hostname '${hostname}': each dot-separated part must be 1–63 letters, digits or '-', not starting or ending with '-' (RFC 1123)`)
    }
  }
  const keys = guest.sshAuthorizedKeys ?? []
  if (keys.length > MAX_SSH_KEYS) bad('sshAuthorizedKeys', `at most ${MAX_SSH_KEYS} SSH keys (--ssh-key), got ${keys.length}`)
  keys.forEach((key, i) => {
    if (/[\r\n]/.test(key.trim())) bad('sshAuthorizedKeys', `SSH key ${i + 1} spans several lines; give one key per line`)
    if (!OPENSSH_KEY.test(key.trim())) bad('sshAuthorizedKeys', `SSH key ${i + 1} ('${key.slice(0, 24)}…') is not an OpenSSH public key (e.g. 'ssh-ed25519 AAAA… user@host', as in ~/.ssh/id_ed25519.pub)`)
  })
  const bytes = Buffer.byteLength(guest.userData ?? '', 'utf8')
  if (bytes > MAX_USER_DATA_BYTES) bad('userData', `--user-data is ${bytes} bytes; at most ${MAX_USER_DATA_BYTES} (64 KiB)`)
}
