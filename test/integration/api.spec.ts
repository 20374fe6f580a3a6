import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { API_ROUTES, ApiClient, FIXED_ROUTES, REQUIRED_ROLE, clusterIdentity, issueToken, type RunningAgent } from '@meshvirt/agent'
import { generateClusterKey, parseClusterKey } from '@meshvirt/mesh'
import { pb } from '@meshvirt/proto'
import { meshvirt, pollUntil } from '@meshvirt/testkit'
import { call } from '../support/control-calls.js'
import { simSpec, startInProcessCluster, type InProcessCluster } from '../support/in-process-cluster.js'

// The HTTPS API (issue 21) on three in-process agents: real TLS, tokens, roles and revocation
// gossip over real libp2p; the simulated hypervisor.
describe('the API: any agent, any user the cluster signed', () => {
  let cluster: InProcessCluster
  let urls: string[]
  const tokens: Record<string, string> = {}
  const client = (i: number, token: string): ApiClient => new ApiClient(urls[i] as string, token)
  const http = async (i: number, token: string, method: string, path: string, body?: unknown): Promise<{ status: number, json: any }> => {
    const c = client(i, token)
    try {
      return await c.send(method, path, body) as { status: number, json: any }
    } finally {
      c.close()
    }
  }

  beforeAll(async () => {
    cluster = await startInProcessCluster([0, 1, 2].map(() => ({ vcpus: 8, memoryMiB: 8192 })), { config: () => ({ apiListen: '127.0.0.1:0' }) })
    urls = cluster.agents.map((a) => a.apiUrl as string)
    // The first admin comes from a host's control socket (root on a host is admin).
    const admin = await call(cluster.agents[0] as RunningAgent, { addUser: { name: 'root', role: 'admin' } })
    tokens.admin = admin.userToken?.token as string
    for (const [name, role] of [['vera', 'viewer'], ['otto', 'operator']] as const) {
      const made = await http(1, tokens.admin, 'POST', '/v1/users', { name, role, expiresInMs: 3_600_000 })
      expect(made.status).toBe(200)
      tokens[role] = made.json.userToken.token
    }
  }, 120_000)
  afterAll(async () => { await cluster?.stop() })

  it('health needs no token; everything else wants a valid one (401), from any agent', async () => {
    for (const url of urls) expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    expect(await http(0, tokens.viewer as string, 'GET', '/v1/health')).toMatchObject({ status: 200, json: { ok: true } })
    const other = clusterIdentity(parseClusterKey(generateClusterKey()))
    const now = Date.now()
    // Another cluster's token, pinned to this cluster's CA (so the TLS check passes and the agent decides).
    const foreign = issueToken(other.tokenKey, { user: 'mallory', role: 'admin', issuedAtMs: now, expiresAtMs: now + 3_600_000, caPin: clusterIdentity(parseClusterKey(generateClusterKey())).ca.pin })
    for (const i of [0, 1, 2]) {
      const pinned = new ApiClient(urls[i] as string, foreign, { caPin: (JSON.parse(Buffer.from((tokens.viewer as string).split('.')[1] as string, 'base64url').toString()) as { ca: string }).ca })
      const refused = await pinned.send('GET', '/v1/vms')
      pinned.close()
      expect(refused.status).toBe(401)
      expect(JSON.stringify(refused.json)).toContain('not signed by this cluster')
    }
    // This cluster's own signature on a token that has expired.
    const own = clusterIdentity(parseClusterKey(await readFile(join(cluster.dir, 'cluster.key'))))
    const expired = issueToken(own.tokenKey, { user: 'x', role: 'admin', issuedAtMs: now - 7_200_000, expiresAtMs: now - 3_600_000, caPin: own.ca.pin })
    expect((await http(0, tokens.viewer as string, 'GET', '/v1/vms')).status).toBe(200)
    const noToken = new ApiClient(urls[0] as string, tokens.viewer as string)
    expect((await noToken.send('GET', '/v1/vms', undefined, { headers: { authorization: '' } })).status).toBe(401)
    const late = await noToken.send('GET', '/v1/vms', undefined, { headers: { authorization: `Bearer ${expired}` } })
    expect(late.status).toBe(401)
    expect((late.json as { error: { message: string } }).error.message).toContain('expired')
    noToken.close()
  })

  it('a client holding another cluster\'s pin refuses the agent before sending its token', async () => {
    const otherPin = clusterIdentity(parseClusterKey(generateClusterKey())).ca.pin
    const wary = new ApiClient(urls[0] as string, tokens.viewer as string, { caPin: otherPin })
    await expect(wary.call({ listVms: {} })).rejects.toMatchObject({ code: 'UNAUTHENTICATED', message: expect.stringContaining('not signed by your cluster\'s CA') })
    wary.close()
  })

  it('a viewer lists but cannot create (403 naming the role); an operator creates and migrates through host-2 a VM owned by host-3', async () => {
    expect((await http(2, tokens.viewer as string, 'GET', '/v1/hosts')).json.hostList.hosts).toHaveLength(3)
    const denied = await http(0, tokens.viewer as string, 'POST', '/v1/vms', simSpec('api-1'))
    expect(denied.status).toBe(403)
    expect(denied.json.error.message).toContain('needs the operator role')
    // Placed on host-3 (pinned) through host-2's API.
    const [h1, , h3] = cluster.agents as [RunningAgent, RunningAgent, RunningAgent]
    const made = await http(1, tokens.operator as string, 'POST', '/v1/vms', { ...simSpec('api-1'), host: h3.hostId })
    expect(made.status, JSON.stringify(made.json)).toBe(200)
    expect(made.json.vm.summary.owner).toBe(h3.hostId)
    await pollUntil(async () => (await http(1, tokens.viewer as string, 'GET', '/v1/vms/api-1')).json.vm?.summary?.state === 'VM_STATE_RUNNING', { timeoutMs: 10_000, what: 'api-1 running' })
    const moved = await http(1, tokens.operator as string, 'POST', '/v1/vms/api-1/migrate', { toHost: h1.hostId })
    expect(moved.status, JSON.stringify(moved.json)).toBe(200)
    expect(moved.json.vm.summary.owner).toBe(h1.hostId)
    // The viewer may not read the console either (operator), nor drain a host (admin).
    expect((await http(0, tokens.viewer as string, 'GET', '/v1/vms/api-1/console')).status).toBe(403)
    const drain = await http(0, tokens.operator as string, 'POST', `/v1/hosts/${h3.hostId}/drain`, {})
    expect(drain.status).toBe(403)
    expect(drain.json.error.message).toContain('needs the admin role')
  })

  it('every change through the API is an event naming the user (audit)', async () => {
    await pollUntil(async () => {
      const events = (await call(cluster.agents[2] as RunningAgent, { listEvents: { limit: 1000 } })).eventList?.events ?? []
      const lines = events.filter((e) => e.event?.kind === pb.EventKind.EVENT_KIND_API_REQUEST).map((e) => e.event?.message ?? '')
      return lines.some((l) => l.startsWith('otto (operator): createVm api-1 → ok')) && lines.some((l) => l.startsWith('otto (operator): migrateVm api-1 → ok')) &&
        lines.some((l) => l.startsWith('root (admin): addUser vera → ok'))
    }, { timeoutMs: 10_000, what: 'api-request events for otto\'s create and migrate and root\'s addUser' })
  })

  it('bad input is refused clearly: bad JSON, unknown fields, two bodies, unknown route, wrong method, oversized body', async () => {
    const op = tokens.operator as string
    const c = client(0, op)
    const send = async (method: string, path: string, body?: unknown): Promise<{ status: number, json: any }> => await c.send(method, path, body) as { status: number, json: any }
    try {
      const bad = await send('POST', '/v1/control', '{"listVms": ')
      expect(bad.status).toBe(400)
      expect(bad.json.error.message).toContain('not JSON')
      expect((await send('POST', '/v1/control', { listVms: {}, listHosts: {} })).json.error.message).toContain('exactly one')
      expect((await send('POST', '/v1/control', { syncTombstones: {} })).status).toBe(400)
      expect((await send('POST', '/v1/control', { listVms: {}, hops: 3 })).json.error.message).toContain('unknown field(s) hops')
      const typed = await send('POST', '/v1/vms', { name: 'x', resources: 'many' })
      expect(typed.status).toBe(400)
      expect(typed.json.error.message).toContain('resources: object expected')
      expect((await send('GET', '/v1/nothing')).status).toBe(404)
      expect((await send('PUT', '/v1/vms')).status).toBe(405)
      expect((await send('POST', '/v1/vms', { name: 'big', pad: 'x'.repeat(1_100_000) })).status).toBe(413)
      expect((await send('GET', '/v1/vms/nope')).status).toBe(404)
    } finally {
      c.close()
    }
    expect((await http(0, op, 'GET', '/v1/vms')).json.vmList.vms.some((v: any) => v.summary.name === 'big')).toBe(false)
  })

  it('the CLI runs remotely with --endpoint, the same commands and output', async () => {
    const env = { MESHVIRT_TOKEN: tokens.operator as string, MESHVIRT_CONFIG_DIR: cluster.dir }
    const listed = await meshvirt(['--endpoint', urls[2] as string, 'vm', 'ls'], env)
    expect(listed.exitCode, listed.stderr).toBe(0)
    expect(listed.stdout).toContain('api-1')
    const stopped = await meshvirt(['vm', 'stop', 'api-1', '--endpoint', urls[0] as string], env)
    expect(stopped.exitCode, stopped.stderr).toBe(0)
    // A viewer's CLI is refused the same way, with the role it lacks.
    const refused = await meshvirt(['vm', 'start', 'api-1', '--endpoint', urls[0] as string], { ...env, MESHVIRT_TOKEN: tokens.viewer as string })
    expect(refused.exitCode).toBe(1)
    expect(refused.stderr).toContain('needs the operator role')
  })

  it('a revoked user is refused by every agent within the gossip convergence time', async () => {
    const before = tokens.operator as string
    for (const i of [0, 1, 2]) expect((await http(i, before, 'GET', '/v1/vms')).status).toBe(200)
    const at = Date.now()
    expect((await http(0, tokens.admin as string, 'DELETE', '/v1/users/otto')).status).toBe(200)
    const refusedAt: number[] = []
    await pollUntil(async () => {
      for (const i of [0, 1, 2]) {
        if (refusedAt[i] === undefined && (await http(i, before, 'GET', '/v1/vms')).status === 401) refusedAt[i] = Date.now() - at
      }
      return refusedAt.filter((x) => x !== undefined).length === 3
    }, { timeoutMs: 10_000, intervalMs: 50, what: 'every agent to refuse otto\'s token' })
    console.log(`revocation refused at host-1/2/3 after ${refusedAt.join(' / ')} ms`)
    // A new token for the same user, issued after the revocation, works.
    const again = await http(2, tokens.admin as string, 'POST', '/v1/users', { name: 'otto', role: 'operator' })
    expect((await http(1, again.json.userToken.token, 'GET', '/v1/vms')).status).toBe(200)
  })

  it('a client presenting bad tokens again and again is slowed down (429)', async () => {
    const c = client(2, tokens.viewer as string)
    const statuses: number[] = []
    for (let n = 0; n < 25; n++) statuses.push((await c.send('GET', '/v1/vms', undefined, { headers: { authorization: 'Bearer mvt1.x.y' } })).status)
    c.close()
    // Earlier cases spent some of this address's allowance: 401s, then 429s once it is spent.
    const firstLimited = statuses.indexOf(429)
    expect(firstLimited).toBeGreaterThan(0)
    expect(firstLimited).toBeLessThanOrEqual(20)
    expect(statuses.slice(0, firstLimited).every((s) => s === 401)).toBe(true)
    expect(statuses.slice(firstLimited).every((s) => s === 429)).toBe(true)
  })

  it('any agent tells the last hour of every host\'s use (GET /v1/history), from the gossip', async () => {
    await pollUntil(async () => {
      const series = ((await http(2, tokens.viewer as string, 'GET', '/v1/history')).json.usageHistory?.series ?? []) as Array<{ kind: string, id: string, timesMs: number[], cpu: number[], memoryBytes: number[], netRxBps?: number[] }>
      const hosts = series.filter((s) => s.kind === 'host' && s.timesMs.length >= 2)
      if (hosts.length !== 3) return false
      for (const h of hosts) {
        expect(h.cpu.length).toBe(h.timesMs.length)
        expect(h.cpu.every((c) => c === null || (c >= 0 && c <= 1))).toBe(true)
        expect(h.memoryBytes.some((m) => m > 0)).toBe(true)
      }
      expect(cluster.agents.map((a) => a.hostId).sort()).toEqual(hosts.map((h) => h.id).sort())
      return true
    }, { timeoutMs: 15_000, what: 'history of 3 hosts with 2 samples each' })
  })

  it('a replicated VM\'s replica lag is in every agent\'s history (the owner gossips it)', async () => {
    const admin = tokens.admin as string
    const made = await http(0, admin, 'POST', '/v1/vms', { ...simSpec('api-r'), resources: { vcpus: 1, memoryBytes: 128 * 2 ** 20, diskBytes: 64 * 2 ** 20 }, replicas: 1, rpoMs: 2000 })
    expect(made.status, JSON.stringify(made.json)).toBe(200)
    let lags: number[] = []
    await pollUntil(async () => {
      const series = ((await http(2, admin, 'GET', '/v1/history')).json.usageHistory?.series ?? []) as Array<{ kind: string, name: string, replicaLagS?: Array<number | null> }>
      lags = (series.find((s) => s.kind === 'vm' && s.name === 'api-r')?.replicaLagS ?? []).filter((v): v is number => typeof v === 'number')
      return lags.length >= 2
    }, { timeoutMs: 20_000, what: 'api-r\'s replica lag in host-3\'s history' })
    // Within a few RPOs of a point (the simulated driver replicates in memory).
    expect(Math.max(...lags)).toBeLessThan(10)
    expect((await http(1, admin, 'DELETE', '/v1/vms/api-r')).status).toBe(200)
  })

  it('the OpenAPI document lists exactly the routes the server answers, each with its role', async () => {
    const doc = (await http(0, tokens.viewer as string, 'GET', '/v1/openapi.json')).json
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)).sort()
    const routed = [...API_ROUTES.map((r) => `${r.method} ${r.path}`), ...FIXED_ROUTES.map((r) => `${r.method} ${r.path}`)].sort()
    expect(documented).toEqual(routed)
    for (const r of API_ROUTES) {
      expect(doc.paths[r.path][r.method.toLowerCase()]['x-meshvirt-role']).toBe(REQUIRED_ROLE[r.body])
      // Each route's body is a real request the control API knows.
      expect(pb.ControlRequest.fromObject({ [r.body]: {} }).body).toBe(r.body)
      // And the server routes it (not 404/405): with no valid target it answers from the handler.
      const path = r.path.replace(/\{[^}]+\}/g, 'nothing-here')
      const res = await http(0, tokens.admin as string, r.method === 'POST' || r.method === 'DELETE' ? 'GET' : r.method, path)
      if (r.method === 'GET') expect([200, 400, 404], `${r.method} ${path}: ${JSON.stringify(res.json)}`).toContain(res.status)
      if (res.status === 404) expect(res.json.error.message).not.toContain('no route')
    }
  })
})
