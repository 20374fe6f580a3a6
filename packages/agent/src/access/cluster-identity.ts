import { createECDH, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto'
import { readClusterKey } from '../store/cluster-key-file.js'
import { certificate, type Issuer } from './certificates.js'

/** The order of P-256's group: a derived private key is a scalar in [1, n-1]. */
const P256_ORDER = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551')
const CA_NAME = 'meshvirt cluster CA'
/** A fixed validity: every agent derives the same CA, so it cannot depend on when it starts. */
const CA_NOT_BEFORE = new Date('2020-01-01T00:00:00Z')
const CA_NOT_AFTER = new Date('2100-01-01T00:00:00Z')
/** An agent's certificate is made at each start; a year is far more than an agent runs. */
const AGENT_CERT_DAYS = 365

/**
 * What the cluster key gives every agent, without a centre: the key that signs and checks user
 * tokens, and the cluster CA that signs the agents' TLS certificates. Both are derived (HKDF) from
 * the cluster key `meshvirt cluster init` wrote, so whoever holds that file — every agent, and
 * nobody else — can issue a token any agent accepts, or a certificate any client trusts.
 */
export interface ClusterIdentity {
  /** HMAC-SHA256 key of user tokens. */
  tokenKey: Buffer
  ca: Issuer & {
    /** `sha256:` + base64url of the SHA-256 of the CA's public key (SPKI): what clients pin. */
    pin: string
    /** The CA certificate (PEM). Each agent signs its own copy; the key, name and pin are the same. */
    pem: string
  }
}

export function clusterIdentity (clusterKey: Uint8Array): ClusterIdentity {
  const derive = (info: string, bytes: number): Buffer => Buffer.from(hkdfSync('sha256', clusterKey, 'meshvirt', info, bytes))
  const tokenKey = derive('meshvirt user tokens v1', 32)
  const { privateKey, publicKey } = p256FromSeed(derive('meshvirt cluster CA v1', 48))
  const issuer = { name: CA_NAME, privateKey, publicKey }
  const pem = certificate({ subject: CA_NAME, publicKey, issuer, serial: Buffer.from([1]), notBefore: CA_NOT_BEFORE, notAfter: CA_NOT_AFTER, ca: true })
  return { tokenKey, ca: { ...issuer, pin: caPin(publicKey), pem } }
}

/** The pin of a CA public key: `sha256:<base64url>`. */
export function caPin (publicKey: KeyObject): string {
  return `sha256:${createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('base64url')}`
}

/**
 * A TLS identity for one agent's API: a fresh key pair and a certificate the cluster CA signs,
 * naming the agent's addresses (clients check the CA, not the name: any agent answers any request).
 * `cert` is the chain the server sends (its certificate, then the CA's).
 */
export function agentTlsIdentity (identity: ClusterIdentity, hostId: string, names: { dns: readonly string[], ips: readonly string[] }, now = new Date()): { key: string, cert: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const cert = certificate({
    subject: `meshvirt agent ${hostId}`,
    publicKey,
    issuer: identity.ca,
    serial: randomBytes(16),
    notBefore: new Date(now.getTime() - 3600_000),
    notAfter: new Date(now.getTime() + AGENT_CERT_DAYS * 86_400_000),
    ca: false,
    dns: names.dns,
    ips: names.ips
  })
  return { key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, cert: cert + identity.ca.pem }
}

/** A P-256 key pair whose private scalar comes from `seed` (48 bytes: reduced mod n without bias worth naming). */
function p256FromSeed (seed: Buffer): { privateKey: KeyObject, publicKey: KeyObject } {
  const scalar = BigInt(`0x${seed.toString('hex')}`) % (P256_ORDER - 1n) + 1n
  const d = Buffer.from(scalar.toString(16).padStart(64, '0'), 'hex')
  const ecdh = createECDH('prime256v1')
  ecdh.setPrivateKey(d)
  const point = ecdh.getPublicKey()
  const jwk = { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') }
  return {
    privateKey: createPrivateKey({ key: { ...jwk, d: d.toString('base64url') }, format: 'jwk' }),
    publicKey: createPublicKey({ key: jwk, format: 'jwk' })
  }
}

/** The cluster CA of a cluster key file (`meshvirt cluster ca`): its certificate and pin. */
export async function clusterCaOf (clusterKeyFile: string): Promise<{ pem: string, pin: string }> {
  const { ca } = clusterIdentity((await readClusterKey(clusterKeyFile, { createIfMissing: false })).key)
  return { pem: ca.pem, pin: ca.pin }
}
