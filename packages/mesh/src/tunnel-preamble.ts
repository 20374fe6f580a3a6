/**
 * The opening of a `/meshvirt/migrate/1.0.0` stream, before the raw bytes of QEMU flow: which
 * migration session and which of its channels (RAM stream or NBD disk mirror) this stream carries,
 * and the destination's one-byte answer. Fixed binary fields rather than a protobuf message: the
 * stream is a byte tunnel, and the preamble is three bytes and a name. Authentication and
 * encryption are the connection's (noise + cluster key); nothing is added here.
 */

export const MIGRATE_PROTOCOL = '/meshvirt/migrate/1.0.0'
export const PREAMBLE_VERSION = 1
/** Session ids are short names chosen by the agents (e.g. `<vm>-<epoch>`). */
export const SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

export type TunnelChannel = 'ram' | 'nbd'
const CHANNELS: readonly TunnelChannel[] = ['ram', 'nbd']

/** The destination's answer; anything but `ok` is followed by the stream's close. */
export type TunnelAnswer = 'ok' | 'unknown-session' | 'wrong-peer' | 'unreachable'
const ANSWERS: readonly TunnelAnswer[] = ['ok', 'unknown-session', 'wrong-peer', 'unreachable']

export interface TunnelPreamble {
  session: string
  channel: TunnelChannel
}

/** Bytes each way through one tunnel (all its connections). */
export interface TunnelCounters {
  /** From the local socket to the remote host. */
  sentBytes: number
  /** From the remote host to the local socket. */
  receivedBytes: number
  connections: number
}

export function encodePreamble (p: TunnelPreamble): Uint8Array {
  if (!SESSION_ID.test(p.session)) throw new TypeError(`session id ${JSON.stringify(p.session)} must match ${SESSION_ID.source}`)
  const name = new TextEncoder().encode(p.session)
  const out = new Uint8Array(3 + name.length)
  out[0] = PREAMBLE_VERSION
  out[1] = CHANNELS.indexOf(p.channel)
  out[2] = name.length
  out.set(name, 3)
  if (out[1] < 0) throw new TypeError(`unknown tunnel channel ${String(p.channel)}`)
  return out
}

/** The fixed head: version, channel, name length. Returns the name length to read next. */
export function decodePreambleHead (head: Uint8Array): { channel: TunnelChannel, nameBytes: number } {
  if (head.length !== 3 || head[0] !== PREAMBLE_VERSION) throw new TypeError(`unsupported tunnel preamble version ${String(head[0])}`)
  const channel = CHANNELS[head[1] as number]
  if (channel === undefined) throw new TypeError(`unknown tunnel channel ${String(head[1])}`)
  const nameBytes = head[2] as number
  if (nameBytes < 1 || nameBytes > 128) throw new TypeError(`tunnel session id of ${nameBytes} bytes`)
  return { channel, nameBytes }
}

export function decodeSession (name: Uint8Array): string {
  const session = new TextDecoder('utf-8', { fatal: true }).decode(name)
  if (!SESSION_ID.test(session)) throw new TypeError(`malformed tunnel session id ${JSON.stringify(session)}`)
  return session
}

export function encodeAnswer (answer: TunnelAnswer): Uint8Array {
  return Uint8Array.of(ANSWERS.indexOf(answer))
}

export function decodeAnswer (byte: number): TunnelAnswer {
  const answer = ANSWERS[byte]
  if (answer === undefined) throw new TypeError(`unknown tunnel answer ${byte}`)
  return answer
}
