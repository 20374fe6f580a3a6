import { createHash, sign, type KeyObject } from 'node:crypto'
import { isIP } from 'node:net'
import { bits, bool, explicit, implicit, octets, oid, sequence, set, time, unsigned, utf8, type Der } from './der.js'

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyId: '2.5.29.14',
  keyUsage: '2.5.29.15',
  altNames: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyId: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2'
}

/** An issuer: its name and its P-256 key pair. */
export interface Issuer {
  name: string
  privateKey: KeyObject
  publicKey: KeyObject
}

export interface CertificateRequest {
  /** The subject's common name. */
  subject: string
  publicKey: KeyObject
  /** Who signs it: the CA itself for its own certificate. */
  issuer: Issuer
  serial: Buffer
  notBefore: Date
  notAfter: Date
  /** A CA certificate (signs others) or a TLS endpoint's (server and client auth). */
  ca: boolean
  /** Subject alternative names of an endpoint. */
  dns?: readonly string[]
  ips?: readonly string[]
}

/**
 * An X.509 v3 certificate, ECDSA P-256 with SHA-256, as PEM (RFC 5280): the cluster CA
 * (self-signed, `issuer` = itself) or an agent's TLS certificate signed by it.
 */
export function certificate (req: CertificateRequest): string {
  const algorithm = sequence(oid(OID.ecdsaWithSha256))
  const extensions: Der[] = [
    extension(OID.basicConstraints, true, req.ca ? sequence(bool(true)) : sequence()),
    // keyCertSign + cRLSign for a CA; digitalSignature for an endpoint.
    extension(OID.keyUsage, true, req.ca ? bits(Buffer.from([0x06]), 1) : bits(Buffer.from([0x80]), 7)),
    extension(OID.subjectKeyId, false, octets(keyId(req.publicKey))),
    extension(OID.authorityKeyId, false, sequence(implicit(0, keyId(req.issuer.publicKey))))
  ]
  if (!req.ca) {
    extensions.push(extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth), oid(OID.clientAuth))))
    const names = [...(req.dns ?? []).map((d) => implicit(2, Buffer.from(d, 'ascii'))), ...(req.ips ?? []).map((ip) => implicit(7, ipBytes(ip)))]
    if (names.length > 0) extensions.push(extension(OID.altNames, false, sequence(...names)))
  }
  const tbs = sequence(
    explicit(0, unsigned(Buffer.from([2]))),
    unsigned(req.serial),
    algorithm,
    name(req.issuer.name),
    sequence(time(req.notBefore), time(req.notAfter)),
    name(req.subject),
    req.publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, sequence(...extensions))
  )
  const signature = sign('sha256', tbs, { key: req.issuer.privateKey, dsaEncoding: 'der' })
  const der = sequence(tbs, algorithm, bits(signature))
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`
}

/** A key's identifier (RFC 5280 §4.2.1.2 allows any stable method): SHA-256 of its SPKI, 20 bytes. */
export function keyId (publicKey: KeyObject): Buffer {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest().subarray(0, 20)
}

function name (commonName: string): Der {
  return sequence(set(sequence(oid(OID.organization), utf8('meshvirt'))), set(sequence(oid(OID.commonName), utf8(commonName))))
}

function extension (id: string, critical: boolean, value: Der): Der {
  return critical ? sequence(oid(id), bool(true), octets(value)) : sequence(oid(id), octets(value))
}

/** An IPv4 or IPv6 address as the 4 or 16 bytes of a SAN iPAddress. */
export function ipBytes (ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number))
  if (isIP(ip) !== 6) throw new Error(`not an IP address: ${ip}`)
  const [head = '', tail] = ip.split('::') as [string, string | undefined]
  const groups = (part: string): string[] => part === '' ? [] : part.split(':')
  let h = groups(head)
  let t = tail === undefined ? [] : groups(tail)
  // An embedded IPv4 tail (::ffff:10.0.0.1) is two groups.
  const v4 = (list: string[]): string[] => {
    const last = list.at(-1)
    if (last === undefined || !last.includes('.')) return list
    const b = last.split('.').map(Number) as [number, number, number, number]
    return [...list.slice(0, -1), ((b[0] << 8) | b[1]).toString(16), ((b[2] << 8) | b[3]).toString(16)]
  }
  if (tail === undefined) h = v4(h)
  else t = v4(t)
  const all = [...h, ...Array(8 - h.length - t.length).fill('0') as string[], ...t]
  const out = Buffer.alloc(16)
  all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2))
  return out
}
