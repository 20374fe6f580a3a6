import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { HostCapacity, HostEntry } from '@meshvirt/mesh'
import { afterEach, describe, expect, it } from 'vitest'
import { pollUntil } from '@meshvirt/testkit'
import { silentLogger } from '../src/log/logger.js'
import { loadOrCreateToken } from '../src/monitor/access-token.js'
import { createAgentMetrics } from '../src/monitor/agent-metrics.js'
import { queryDriveStats } from '../src/monitor/block-stats.js'
import type { ClusterEvent } from '../src/monitor/cluster-event.js'
import { clusterSnapshot } from '../src/monitor/cluster-snapshot.js'
import { EventRing } from '../src/monitor/event-ring.js'
import { parseMonitorListen } from '../src/monitor/monitor-listen.js'
import { MonitorServer } from '../src/monitor/monitor-server.js'

const GIB = 2 ** 30
const capacity: HostCapacity = {
  total: { vcpus: 8, memoryBytes: 16 * GIB, diskBytes: 100 * GIB },
  hostReserved: { vcpus: 1, memoryBytes: GIB, diskBytes: 0 },
  allocated: { vcpus: 3, memoryBytes: 2 * GIB, diskBytes: 10 * GIB },
  reservations: { vcpus: 1, memoryBytes: GIB / 2, diskBytes: 0 },
  overcommit: { cpu: 4, memory: 1, disk: 1 }
}
const vms = [
  { id: 'vm-a', name: 'web', state: 'running', epoch: 1 },
  { id: 'vm-b', name: 'db', state: 'running', epoch: 2 },
  { id: 'vm-c', name: 'old', state: 'stopped', epoch: 1 }
]

/** The value of one sample line (`name{labels} value`) in Prometheus text. */
function sample (text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

describe('agent metrics', () => {
  it('render capacity, VMs by state, per-VM usage, broker, gossip, events and placement latency', async () => {
    const metrics = createAgentMetrics({
      capacity: () => capacity,
      vms: () => vms,
      vmStats: async (id) => ({ id, rssBytes: id === 'vm-a' ? 230 * 2 ** 20 : 100, cpuSeconds: 12.5, uptimeSeconds: 60 }),
      broker: () => ({ placed: 7, failed: 1, attempts: 12, refusals: 3, refusedBy: { 'insufficient-memory': 2, draining: 1 }, unreachable: 1 }),
      placementConcurrency: () => ({ running: 4, queued: 9, limit: 4 }),
      migrations: () => ({ succeeded: 2, failed: 1, lastDowntimeMs: 31.5, lastTotalMs: 2400, inFlight: 0 }),
      mesh: () => ({ adverts: { accepted: 40, rejected: { unsigned: 0, oversized: 0, undecodable: 1, invalid: 0, 'signer-mismatch': 2 }, ignored: { stale: 5 } }, suspicions: { accepted: 1, published: 2, rejected: { unsigned: 0, oversized: 0, undecodable: 0, invalid: 0, 'signer-mismatch': 0 } }, published: 9, connections: 2, peers: 2, inbound: { pending: 3, refusedPerAddress: 41 }, reconnects: { tried: 12, answered: 1 } }),
      hosts: () => [{ liveness: 'alive' }, { liveness: 'alive' }, { liveness: 'dead' }],
      events: () => ({ emitted: 4, received: 6, pulled: 1, duplicates: 0, gapsAccepted: 0, rejected: { unsigned: 0, oversized: 0, undecodable: 0, invalid: 0, 'bad-signature': 1, 'signer-mismatch': 0 } })
    })
    metrics.observePlacement({ reserveMs: 3, commitMs: 8, attempts: 1, refusals: 0 })
    metrics.observePlacement({ reserveMs: 40, commitMs: 60, attempts: 3, refusals: 2 })
    const text = await metrics.render()
    expect(metrics.contentType).toMatch(/^text\/plain; version=0.0.4/)
    expect(text).toContain('# TYPE meshvirt_host_vcpus gauge')
    expect(sample(text, 'meshvirt_host_vcpus{kind="allocatable"}')).toBe(28) // (8 − 1) × 4
    expect(sample(text, 'meshvirt_host_memory_bytes{kind="allocated"}')).toBe(2 * GIB)
    expect(sample(text, 'meshvirt_host_memory_bytes{kind="reserved"}')).toBe(GIB / 2)
    expect(sample(text, 'meshvirt_vms{state="running"}')).toBe(2)
    expect(sample(text, 'meshvirt_vms{state="stopped"}')).toBe(1)
    expect(sample(text, 'meshvirt_vms{state="crashed"}')).toBe(0)
    expect(sample(text, 'meshvirt_vms{state="fenced"}')).toBe(0)
    expect(sample(text, 'meshvirt_vms{state="migrating"}')).toBe(0)
    expect(sample(text, 'meshvirt_vm_info{vm="vm-b",name="db",state="running",epoch="2"}')).toBe(1)
    expect(sample(text, 'meshvirt_vm_rss_bytes{vm="vm-a",name="web"}')).toBe(230 * 2 ** 20)
    expect(sample(text, 'meshvirt_vm_cpu_seconds{vm="vm-b",name="db"}')).toBe(12.5)
    expect(text).not.toContain('meshvirt_vm_rss_bytes{vm="vm-c"') // stopped: nothing to measure
    expect(sample(text, 'meshvirt_placements_total{outcome="placed"}')).toBe(7)
    expect(sample(text, 'meshvirt_reserve_requests_total{answer="refused"}')).toBe(3)
    expect(sample(text, 'meshvirt_reserve_requests_total{answer="reserved"}')).toBe(8)
    expect(sample(text, 'meshvirt_reserve_refusals_total{reason="insufficient-memory"}')).toBe(2)
    expect(sample(text, 'meshvirt_reserve_refusals_total{reason="draining"}')).toBe(1)
    expect(sample(text, 'meshvirt_placements_in_flight{state="running"}')).toBe(4)
    expect(sample(text, 'meshvirt_placements_in_flight{state="queued"}')).toBe(9)
    expect(sample(text, 'meshvirt_placements_in_flight{state="limit"}')).toBe(4)
    expect(sample(text, 'meshvirt_migrations_total{outcome="succeeded"}')).toBe(2)
    expect(sample(text, 'meshvirt_migrations_total{outcome="failed"}')).toBe(1)
    expect(sample(text, 'meshvirt_migration_last_downtime_ms')).toBe(31.5)
    expect(sample(text, 'meshvirt_gossip_peers')).toBe(2)
    expect(sample(text, 'meshvirt_inbound_handshakes_pending')).toBe(3)
    expect(sample(text, 'meshvirt_inbound_refused_total{reason="per-address"}')).toBe(41)
    expect(sample(text, 'meshvirt_gossip_reconnects_total{outcome="tried"}')).toBe(12)
    expect(sample(text, 'meshvirt_gossip_reconnects_total{outcome="answered"}')).toBe(1)
    expect(sample(text, 'meshvirt_gossip_adverts_received_total{outcome="rejected:signer-mismatch"}')).toBe(2)
    expect(sample(text, 'meshvirt_gossip_suspicions_total{outcome="published"}')).toBe(2)
    expect(sample(text, 'meshvirt_cluster_hosts{liveness="dead"}')).toBe(1)
    expect(sample(text, 'meshvirt_events_total{origin="gossip"}')).toBe(6)
    expect(sample(text, 'meshvirt_events_rejected_total{reason="bad-signature"}')).toBe(1)
    expect(sample(text, 'meshvirt_placement_reserve_seconds_count')).toBe(2)
    expect(sample(text, 'meshvirt_placement_reserve_seconds_bucket{le="0.005"}')).toBe(1)
    expect(sample(text, 'meshvirt_placement_attempts_sum')).toBe(4)
  })

  it('read block I/O from QMP query-blockstats, named by the guest device id', async () => {
    // The shape QEMU 7.2 answers for a -blockdev disk behind virtio-blk-pci id=root.
    const answer = [
      { device: '', qdev: '/machine/peripheral/root/virtio-backend', 'node-name': 'disk-root', stats: { rd_bytes: 4096, wr_bytes: 512, rd_operations: 3, wr_operations: 1 } },
      { device: 'legacy0', stats: { rd_bytes: 1, wr_bytes: 2, rd_operations: 3, wr_operations: 4 } },
      { device: '', qdev: '', stats: { rd_bytes: 9 } }
    ]
    const drives = await queryDriveStats({ execute: async <T>(cmd: string) => { expect(cmd).toBe('query-blockstats'); return answer as T } })
    expect(drives).toEqual([
      { drive: 'root', readBytes: 4096, writeBytes: 512, readOps: 3, writeOps: 1 },
      { drive: 'legacy0', readBytes: 1, writeBytes: 2, readOps: 3, writeOps: 4 }
    ])
    const metrics = createAgentMetrics({ capacity: () => capacity, vms: () => vms, vmDriveStats: async (id) => id === 'vm-a' ? drives : [] })
    const text = await metrics.render()
    expect(sample(text, 'meshvirt_vm_block_read_bytes_total{vm="vm-a",name="web",drive="root"}')).toBe(4096)
    expect(sample(text, 'meshvirt_vm_block_writes_total{vm="vm-a",name="web",drive="legacy0"}')).toBe(4)
  })

  it('two agents in one process keep separate registries', async () => {
    const one = createAgentMetrics({ capacity: () => capacity, vms: () => vms })
    const two = createAgentMetrics({ capacity: () => capacity, vms: () => [] })
    expect(sample(await one.render(), 'meshvirt_vms{state="running"}')).toBe(2)
    expect(sample(await two.render(), 'meshvirt_vms{state="running"}')).toBe(0)
  })
})

describe('monitor HTTP server', () => {
  let dir: string | undefined
  let server: MonitorServer | undefined
  afterEach(async () => {
    await server?.stop()
    server = undefined
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  /** What the server asked of the event stream: a follow per page read, a hold per open stream. */
  let asked: { follows: number, holds: number, released: number }

  async function start (): Promise<{ url: string, token: string, ring: EventRing }> {
    dir = await mkdtemp(join(tmpdir(), 'mv-mon-'))
    const token = await loadOrCreateToken(join(dir, 'monitor.token'))
    const ring = new EventRing()
    asked = { follows: 0, holds: 0, released: 0 }
    const events = {
      ring,
      follow: async () => { asked.follows++ },
      hold: () => { asked.holds++; return () => { asked.released++ } }
    }
    const metrics = createAgentMetrics({ capacity: () => capacity, vms: () => vms })
    server = new MonitorServer({
      host: '127.0.0.1',
      port: 0,
      token,
      metrics: async () => ({ body: await metrics.render(), contentType: metrics.contentType }),
      snapshot: () => ({ selfId: 'h', timeMs: 1, hosts: [], vms: [] }),
      onViewChange: () => () => {},
      events,
      log: silentLogger
    })
    await server.start()
    return { url: server.url, token, ring }
  }

  it('keeps the token in a 0600 file and reuses it', async () => {
    const { token } = await start()
    const file = join(dir as string, 'monitor.token')
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect(await loadOrCreateToken(file)).toBe(token)
    expect(token).toMatch(/^[0-9a-f]{64}$/)
  })

  it('refuses every path without the token, serves /metrics with a bearer token', async () => {
    const { url, token } = await start()
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    for (const path of ['/metrics', '/', '/api/cluster', '/api/events', '/api/stream']) {
      expect((await fetch(url + path)).status, path).toBe(401)
    }
    expect((await fetch(url + '/metrics', { headers: { authorization: 'Bearer wrong' } })).status).toBe(401)
    const res = await fetch(url + '/metrics', { headers: { authorization: `Bearer ${token}` } })
    expect(res.status).toBe(200)
    expect(await res.text()).toContain('meshvirt_vms{state="running"} 2')
  })

  it('trades /?token= for a cookie and a redirect that drops the token from the address', async () => {
    const { url, token, ring } = await start()
    expect((await fetch(`${url}/?token=nope`, { redirect: 'manual' })).status).toBe(401)
    const login = await fetch(`${url}/?token=${token}`, { redirect: 'manual' })
    expect(login.status).toBe(303)
    expect(login.headers.get('location')).toBe('/')
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] as string
    expect(login.headers.get('set-cookie')).toMatch(/HttpOnly/)
    const page = await fetch(url + '/', { headers: { cookie } })
    expect(await page.text()).toContain('<title>meshvirt</title>')
    const e: ClusterEvent = { hostId: 'h', incarnation: 1, seq: 1, timeMs: 5, kind: 'vm-started', vmId: 'vm-a', vmName: 'web', vmEpoch: 1, subjectHostId: '', message: '' }
    ring.append(e)
    const events = await (await fetch(url + '/api/events', { headers: { cookie } })).json()
    expect(events).toMatchObject({ events: [{ cursor: 1, event: { kind: 'vm-started', vmName: 'web' } }] })
    expect(asked.follows).toBe(1)
  })

  it('streams events as server-sent events', async () => {
    const { url, token, ring } = await start()
    const controller = new AbortController()
    const res = await fetch(url + '/api/stream', { headers: { authorization: `Bearer ${token}` }, signal: controller.signal })
    expect(res.headers.get('content-type')).toBe('text/event-stream')
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    let text = ''
    ring.append({ hostId: 'h', incarnation: 1, seq: 1, timeMs: 5, kind: 'vm-crashed', vmId: 'vm-a', vmName: 'web', vmEpoch: 1, subjectHostId: '', message: 'guest exited' })
    while (!text.includes('vm-crashed')) text += new TextDecoder().decode((await reader.read()).value)
    expect(text).toMatch(/^event: snapshot\ndata: \{/)
    expect(text).toContain('event: event\ndata: {"cursor":1')
    expect(asked).toEqual({ follows: 0, holds: 1, released: 0 })
    controller.abort()
    // The dashboard closed: the stream is no longer held for it.
    await pollUntil(() => asked.released === 1, { timeoutMs: 5_000, what: 'the stream released' })
  })
})

describe('parseMonitorListen', () => {
  it.each([
    ['127.0.0.1:7480', '127.0.0.1', 7480], ['0.0.0.0:9000', '0.0.0.0', 9000], ['[::1]:7480', '::1', 7480],
    [':0', '127.0.0.1', 0], ['7480', '127.0.0.1', 7480]
  ])('%s → %s port %d', (text, host, port) => {
    expect(parseMonitorListen(text)).toEqual({ host, port })
  })
  it.each(['localhost:7480', '1.2.3:80', '127.0.0.1:70000', 'x', ''])('refuses %j, naming the setting', (text) => {
    expect(() => parseMonitorListen(text, '--monitor-listen')).toThrow(/--monitor-listen/)
  })
})

describe('clusterSnapshot', () => {
  it('lists each VM once under its owner (higher epoch wins a hand-over), with replica holders, and skips dead hosts\' VMs', () => {
    const cap = { total: { vcpus: 8, memoryBytes: 8 * GIB, diskBytes: GIB }, hostReserved: { vcpus: 0, memoryBytes: 0, diskBytes: 0 }, allocated: { vcpus: 1, memoryBytes: GIB, diskBytes: 0 }, reservations: { vcpus: 0, memoryBytes: 0, diskBytes: 0 }, overcommit: { cpu: 2, memory: 1, disk: 1 } }
    const vm = (id: string, role: 'owner' | 'replica', epoch: number, owner: string) => ({ id, name: `n-${id}`, epoch, role, state: 'running' as const, resources: { vcpus: 1, memoryBytes: GIB, diskBytes: 0 }, owner, group: '' })
    const host = (hostId: string, hostname: string, liveness: 'alive' | 'dead', vms: ReturnType<typeof vm>[]) => ({
      hostId, liveness, self: hostId === 'a', lastHeardMs: 0, livenessSinceMs: 0,
      advert: { hostId, hostname, vms, capacity: cap, labels: {}, state: 'active', accelerator: 'tcg' }
    }) as unknown as HostEntry
    const snap = clusterSnapshot('a', [
      host('a', 'alpha', 'alive', [vm('v1', 'owner', 1, 'a'), vm('v2', 'owner', 1, 'a')]),
      host('b', 'beta', 'alive', [vm('v2', 'owner', 2, 'b'), vm('v1', 'replica', 1, 'a')]),
      host('c', 'gamma', 'dead', [vm('v3', 'owner', 1, 'c')])
    ], 5)
    expect(snap.vms.map((v) => [v.id, v.ownerName, v.epoch, v.replicas])).toEqual([['v1', 'alpha', 1, ['beta']], ['v2', 'beta', 2, []]])
    expect(snap.hosts.map((h) => [h.hostname, h.liveness, h.allocatable.vcpus, h.vms])).toEqual([['alpha', 'alive', 16, 2], ['beta', 'alive', 16, 1], ['gamma', 'dead', 16, 1]])
  })
})

describe('process metrics', () => {
  it('are prefixed meshvirt_agent_ and off unless asked for', async () => {
    const on = await createAgentMetrics({ capacity: () => capacity, vms: () => [], processMetrics: true }).render()
    expect(on).toContain('meshvirt_agent_process_resident_memory_bytes')
    expect(on).toContain('meshvirt_agent_nodejs_eventloop_lag_p99_seconds')
    const off = await createAgentMetrics({ capacity: () => capacity, vms: () => [] }).render()
    expect(off).not.toContain('meshvirt_agent_process_')
  })
})
