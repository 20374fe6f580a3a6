import { X509Certificate, generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { generateClusterKey, parseClusterKey } from '@meshvirt/mesh'
import { pb } from '@meshvirt/proto'
import { certificate, ipBytes } from '../src/access/certificates.js'
import { agentTlsIdentity, clusterIdentity } from '../src/access/cluster-identity.js'
import { Revocations } from '../src/access/revocations.js'
import { REQUIRED_ROLE, isMutating, roleAllows } from '../src/access/roles.js'
import { issueToken, MAX_TOKEN_LIFETIME_MS, readTokenClaims, verifyToken } from '../src/access/user-token.js'
import { resolveAgentConfig } from '../src/config/agent-config.js'
import { preflight } from '../src/host/preflight.js'
import { FailureLimiter } from '../src/api/failure-limiter.js'
import { API_ROUTES, matchRoute } from '../src/api/api-routes.js'
import { requestFromJson, responseToJson } from '../src/api/json-wire.js'

const key = (): Uint8Array => parseClusterKey(generateClusterKey())

describe('the cluster identity derived from the cluster key', () => {
  it('is the same at every agent holding the key (token key, CA key and pin), and another for another key', () => {
    const k = key()
    const a = clusterIdentity(k)
    const b = clusterIdentity(k)
    expect(a.tokenKey.equals(b.tokenKey)).toBe(true)
    expect(a.ca.pin).toBe(b.ca.pin)
    expect(a.ca.pin).toMatch(/^sha256:[A-Za-z0-9_-]{43}$/)
    const other = clusterIdentity(key())
    expect(other.ca.pin).not.toBe(a.ca.pin)
    expect(other.tokenKey.equals(a.tokenKey)).toBe(false)
  })

  it('makes a CA certificate Node reads as a self-signed CA, and agent certificates it signed', () => {
    const id = clusterIdentity(key())
    const ca = new X509Certificate(id.ca.pem)
    expect(ca.ca).toBe(true)
    expect(ca.subject).toContain('CN=meshvirt cluster CA')
    expect(ca.verify(ca.publicKey)).toBe(true)
    const tls = agentTlsIdentity(id, '12D3KooWTest', { dns: ['host-1', 'localhost'], ips: ['127.0.0.1', '::1', '10.0.0.5'] })
    const leaf = new X509Certificate(tls.cert)
    expect(leaf.ca).toBe(false)
    expect(leaf.verify(ca.publicKey)).toBe(true)
    expect(leaf.checkIssued(ca)).toBe(true)
    expect(leaf.subjectAltName).toBe('DNS:host-1, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:10.0.0.5')
    expect(leaf.verify(new X509Certificate(clusterIdentity(key()).ca.pem).publicKey)).toBe(false)
    // The chain the server sends: its certificate, then the CA's.
    expect(tls.cert.match(/BEGIN CERTIFICATE/g)).toHaveLength(2)
  })

  it('encodes dates after 2049 as GeneralizedTime and IPv6 addresses in full', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const pem = certificate({ subject: 'x', publicKey, issuer: { name: 'x', privateKey, publicKey }, serial: Buffer.from([0x80, 1]), notBefore: new Date('2049-12-31T23:59:59Z'), notAfter: new Date('2101-06-01T00:00:00Z'), ca: true })
    const cert = new X509Certificate(pem)
    expect(new Date(cert.validTo).toISOString()).toBe('2101-06-01T00:00:00.000Z')
    expect(new Date(cert.validFrom).toISOString()).toBe('2049-12-31T23:59:59.000Z')
    expect(cert.serialNumber.toLowerCase()).toBe('8001')
    expect(ipBytes('fe80::1').toString('hex')).toBe('fe800000000000000000000000000001')
    expect(ipBytes('::ffff:10.0.0.1').toString('hex')).toBe('00000000000000000000ffff0a000001')
    expect(() => ipBytes('nope')).toThrow('not an IP')
  })
})

describe('user tokens', () => {
  const id = clusterIdentity(key())
  const now = 1_800_000_000_000
  const claims = { user: 'alice', role: 'operator' as const, issuedAtMs: now, expiresAtMs: now + 3_600_000, caPin: id.ca.pin }

  it('verify offline at any agent of the cluster, and carry the CA pin', () => {
    const token = issueToken(id.tokenKey, claims)
    expect(verifyToken(id.tokenKey, token, now + 1)).toEqual(claims)
    expect(readTokenClaims(token)).toEqual({ user: 'alice', role: 'operator', caPin: id.ca.pin })
  })

  it('are refused when expired, altered, of another cluster or not tokens at all', () => {
    const token = issueToken(id.tokenKey, claims)
    expect(() => verifyToken(id.tokenKey, token, now + 3_600_000)).toThrow('expired')
    const [p, body, mac] = token.split('.') as [string, string, string]
    const admin = Buffer.from(Buffer.from(body, 'base64url').toString().replace('"operator"', '"admin"')).toString('base64url')
    expect(() => verifyToken(id.tokenKey, `${p}.${admin}.${mac}`, now)).toThrow('not signed by this cluster')
    expect(() => verifyToken(clusterIdentity(key()).tokenKey, token, now)).toThrow('not signed by this cluster')
    expect(() => verifyToken(id.tokenKey, 'hello', now)).toThrow('not a meshvirt user token')
    expect(() => issueToken(id.tokenKey, { ...claims, user: 'Alice!' })).toThrow('user name')
  })
})

describe('revocations', () => {
  const memory = (): { getMeta: (k: string) => string | undefined, setMeta: (k: string, v: string) => void } => {
    const m = new Map<string, string>()
    return { getMeta: (k) => m.get(k), setMeta: (k, v) => { m.set(k, v) } }
  }

  it('refuse tokens issued until the revocation, not after; survive a restart; merge the later instant', () => {
    const store = memory()
    let now = 1000
    const r = new Revocations(store, () => now)
    r.revoke('bob')
    expect(r.refuses({ user: 'bob', issuedAtMs: 999 })).toBe(true)
    expect(r.refuses({ user: 'bob', issuedAtMs: 1000 })).toBe(true)
    expect(r.refuses({ user: 'bob', issuedAtMs: 1001 })).toBe(false)
    expect(r.refuses({ user: 'carol', issuedAtMs: 1 })).toBe(false)
    expect(new Revocations(store, () => now).list()).toEqual([{ user: 'bob', beforeMs: 1000 }])
    expect(r.merge([{ user: 'bob', beforeMs: 500 }])).toBe(false)
    expect(r.merge([{ user: 'bob', beforeMs: 2000 }, { user: 'carol', beforeMs: 900 }])).toBe(true)
    expect(r.list()).toEqual([{ user: 'bob', beforeMs: 2000 }, { user: 'carol', beforeMs: 900 }])
    // Forgotten once every token it covers has expired.
    now = 2001 + MAX_TOKEN_LIFETIME_MS
    expect(r.list()).toEqual([])
  })

  it('are bounded: past the advert\'s limit a new revocation is refused, not another one dropped', () => {
    const r = new Revocations(memory(), () => 5)
    for (let i = 0; i < 256; i++) r.revoke(`u${i}`)
    expect(() => r.revoke('one-more')).toThrow('revoked already')
    expect(r.list()).toHaveLength(256)
  })
})

describe('roles and routes', () => {
  it('changes are audited, reads are not (a console read needs an operator but changes nothing)', () => {
    expect(isMutating('createVm')).toBe(true)
    expect(isMutating('revokeUser')).toBe(true)
    expect(isMutating('listVms')).toBe(false)
    expect(isMutating('readConsole')).toBe(false)
    expect(isMutating('syncTombstones')).toBe(false)
  })

  it('each role includes the one before', () => {
    expect(roleAllows('admin', 'operator')).toBe(true)
    expect(roleAllows('operator', 'viewer')).toBe(true)
    expect(roleAllows('viewer', 'operator')).toBe(false)
    expect(roleAllows('operator', 'admin')).toBe(false)
  })

  it('every body the API offers is a request of the control API; the hosts\' own requests are not offered', () => {
    for (const body of Object.keys(REQUIRED_ROLE)) expect(pb.ControlRequest.fromObject({ [body]: {} }).body).toBe(body)
    for (const internal of ['syncTombstones', 'holdImage', 'attachConsole']) expect(REQUIRED_ROLE[internal]).toBeUndefined()
    for (const r of API_ROUTES) expect(REQUIRED_ROLE[r.body], r.path).toBeDefined()
  })

  it('matches paths with parameters, tells a wrong method from an unknown path', () => {
    expect(matchRoute('GET', '/v1/vms/web-1')).toMatchObject({ route: { body: 'inspectVm' }, params: { name: 'web-1' } })
    expect(matchRoute('POST', '/v1/vms/web%201/stop')).toMatchObject({ route: { body: 'stopVm' }, params: { name: 'web 1' } })
    expect(matchRoute('PUT', '/v1/vms')).toEqual({ allowed: ['GET', 'POST'] })
    expect(matchRoute('GET', '/v1/vms/')).toBeUndefined()
    expect(matchRoute('GET', '/v2/vms')).toBeUndefined()
  })

  it('reads requests and writes answers as protobuf JSON', () => {
    expect(requestFromJson({ createVm: { spec: { name: 'a', resources: { vcpus: 2, memoryBytes: 1024 } } } }).createVm?.spec?.resources?.memoryBytes).toBe(1024)
    expect(() => requestFromJson([])).toThrow('JSON object')
    expect(() => requestFromJson({ listVms: {}, inspectVm: {} })).toThrow('exactly one')
    expect(() => requestFromJson({ createVm: { spec: 'x' } })).toThrow('bad request: CreateVm.spec: object expected')
    const json = responseToJson({ consoleChunk: { data: new Uint8Array([104, 105]), nextOffset: 2 } })
    expect(json).toEqual({ consoleChunk: { data: 'aGk=', nextOffset: 2 } })
  })
})

describe('FailureLimiter', () => {
  it('lets an address fail 20 times in a burst, then one more every half second', () => {
    let now = 0
    const f = new FailureLimiter(() => now)
    for (let i = 0; i < 20; i++) { expect(f.allows('a')).toBe(true); f.failed('a') }
    expect(f.allows('a')).toBe(false)
    expect(f.allows('b')).toBe(true)
    now += 500
    expect(f.allows('a')).toBe(true)
  })
})

describe('--api-listen', () => {
  const config = (apiListen?: string): ReturnType<typeof resolveAgentConfig> => resolveAgentConfig([{ name: 't', input: { dataDir: '/tmp/mv-api', ...(apiListen !== undefined ? { apiListen } : {}) } }])
  it('is off unless given; an address is an IP and a port, refused before anything starts otherwise', () => {
    expect(preflight(config()).api).toBeUndefined()
    expect(preflight(config('off')).api).toBeUndefined()
    expect(preflight(config('0.0.0.0:7443')).api).toEqual({ host: '0.0.0.0', port: 7443 })
    expect(preflight(config(':0')).api).toEqual({ host: '127.0.0.1', port: 0 })
    expect(() => preflight(config('api.example.com:7443'))).toThrow(/--api-listen: 'api.example.com:7443' is not HOST:PORT/)
  })
})
