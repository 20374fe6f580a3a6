/**
 * The few DER (ASN.1) encodings an X.509 certificate needs, nothing more: certificates.ts builds
 * the cluster CA and the agents' certificates from them, and Node's own X509Certificate reads them.
 */

export type Der = Buffer

function length (n: number): Buffer {
  if (n < 0x80) return Buffer.from([n])
  const bytes: number[] = []
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff)
  return Buffer.from([0x80 | bytes.length, ...bytes])
}

export function tlv (tag: number, ...content: Buffer[]): Der {
  const body = Buffer.concat(content)
  return Buffer.concat([Buffer.from([tag]), length(body.length), body])
}

export const sequence = (...items: Der[]): Der => tlv(0x30, ...items)
export const set = (...items: Der[]): Der => tlv(0x31, ...items)
export const bool = (v: boolean): Der => tlv(0x01, Buffer.from([v ? 0xff : 0]))
export const octets = (bytes: Buffer): Der => tlv(0x04, bytes)
export const utf8 = (text: string): Der => tlv(0x0c, Buffer.from(text, 'utf8'))
/** A BIT STRING of whole bytes, or of `unusedBits` fewer (key usage flags). */
export const bits = (bytes: Buffer, unusedBits = 0): Der => tlv(0x03, Buffer.from([unusedBits]), bytes)
/** `[n]` wrapping a constructed value (EXPLICIT tagging). */
export const explicit = (n: number, inner: Der): Der => tlv(0xa0 | n, inner)
/** `[n]` replacing a primitive value's tag (IMPLICIT tagging: a SAN's dNSName, iPAddress). */
export const implicit = (n: number, bytes: Buffer): Der => tlv(0x80 | n, bytes)

/** A non-negative INTEGER from big-endian bytes (a leading zero keeps it positive). */
export function unsigned (bytes: Buffer): Der {
  let i = 0
  while (i < bytes.length - 1 && bytes[i] === 0) i++
  const trimmed = bytes.subarray(i)
  return tlv(0x02, (trimmed[0] as number) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed)
}

export function oid (dotted: string): Der {
  const arcs = dotted.split('.').map(Number)
  const out: number[] = [40 * (arcs[0] as number) + (arcs[1] as number)]
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f]
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f))
    out.push(...chunk)
  }
  return tlv(0x06, Buffer.from(out))
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5), to the second. */
export function time (at: Date): Der {
  const iso = at.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'
  return at.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2), 'ascii')) : tlv(0x18, Buffer.from(iso, 'ascii'))
}
