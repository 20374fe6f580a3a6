import { ControlError } from '../control/errors.js'

/** An image's name in the library, `NAME[:TAG]`, as VMs are named (lowercase, digits, `-`, `.`, `_`). */
export const IMAGE_NAME = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/
export const IMAGE_TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/
export const DEFAULT_TAG = 'latest'
/** `sha256:` and 64 lowercase hex digits. */
export const IMAGE_DIGEST = /^sha256:[0-9a-f]{64}$/

export interface ImageRef { name: string, tag: string }

/** `debian-12` → debian-12:latest; `debian-12:2026-12` as given. Throws INVALID_ARGUMENT saying what to fix. */
export function parseImageRef (text: string): ImageRef {
  const at = text.indexOf(':')
  const name = at < 0 ? text : text.slice(0, at)
  const tag = at < 0 ? DEFAULT_TAG : text.slice(at + 1)
  if (!IMAGE_NAME.test(name)) throw new ControlError('INVALID_ARGUMENT', `image name '${name}' must be 1–63 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit`)
  if (!IMAGE_TAG.test(tag)) throw new ControlError('INVALID_ARGUMENT', `image tag '${tag}' must be 1–64 letters, digits, '.', '_' or '-', not starting with '.' or '-'`)
  return { name, tag }
}

/** The canonical `NAME:TAG`. */
export function formatImageRef (ref: ImageRef): string {
  return `${ref.name}:${ref.tag}`
}

/** `text` in its canonical form (`NAME:TAG`); throws like parseImageRef. */
export function canonicalRef (text: string): string {
  return formatImageRef(parseImageRef(text))
}

/** The digest's hex, for paths (`sha256:ab…` → `ab…`); throws on anything else. */
export function digestHex (digest: string): string {
  if (!IMAGE_DIGEST.test(digest)) throw new ControlError('INVALID_ARGUMENT', `'${digest}' is not an image digest (sha256:<64 hex digits>)`)
  return digest.slice('sha256:'.length)
}

/** The short form shown in tables: `sha256:0123456789ab`. */
export function shortDigest (digest: string): string {
  return digest.slice(0, 'sha256:'.length + 12)
}
