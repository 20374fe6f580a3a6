import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { UsageError, type CommandContext } from '../command.js'

/** The spec's `guest` (proto GuestConfig) from --hostname, --ssh-key FILE…, --user-data FILE; undefined when none is given. */
export function guestFromFlags (ctx: CommandContext): { hostname?: string, sshAuthorizedKeys?: string[], userData?: string } | undefined {
  const v = ctx.values
  const keyFiles = Array.isArray(v['ssh-key']) ? v['ssh-key'] as string[] : v['ssh-key'] === undefined ? [] : [v['ssh-key'] as string]
  const hostname = v.hostname as string | undefined
  const userDataFile = v['user-data'] as string | undefined
  if (keyFiles.length === 0 && hostname === undefined && userDataFile === undefined) return undefined
  const guest: { hostname?: string, sshAuthorizedKeys?: string[], userData?: string } = {}
  if (hostname !== undefined) guest.hostname = hostname
  // A file may hold several keys, one a line, as authorized_keys does; blank lines and comments are skipped.
  const keys = keyFiles.flatMap((f) => readText(ctx, f, '--ssh-key').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')))
  if (keyFiles.length > 0 && keys.length === 0) throw new UsageError(`--ssh-key: ${keyFiles.join(', ')} hold no key (expected lines like 'ssh-ed25519 AAAA… user@host')`)
  if (keys.length > 0) guest.sshAuthorizedKeys = keys
  if (userDataFile !== undefined) guest.userData = readText(ctx, userDataFile, '--user-data')
  return guest
}

function readText (ctx: CommandContext, file: string, flag: string): string {
  const path = resolve(ctx.cwd ?? process.cwd(), file)
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new UsageError(`${flag} ${file}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
}
