/**
 * A live migration through the mesh, as the agents will run it: QEMU ↔ unix socket ↔ libp2p stream
 * (noise + cluster key) ↔ unix socket ↔ QEMU, for both the RAM stream and the NBD disk mirror,
 * between two mesh nodes and two QEMU drivers in one process. The same guest then moves back over
 * direct unix sockets, so the two paths are compared on the same guest in the same run.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { QemuHypervisor, type MigrationResult, type VmSpec } from '@meshvirt/hypervisor'
import { TunnelExits, createMeshNode, generateClusterKey, generateIdentity, openTunnelEntrance, type MeshNode } from '@meshvirt/mesh'
import { ensureGuest, killQemusUnder, lastCounter, waitForSerial, type TestGuest, pollUntil } from '@meshvirt/testkit'

/** Below QEMU's 300 ms default: the pause a guest should see, as the benchmark targets. */
const DOWNTIME_LIMIT_MS = 30
let guest: TestGuest
let root: string
const dataDirs: string[] = []
const drivers: QemuHypervisor[] = []
const nodes: MeshNode[] = []

interface Host { hv: QemuHypervisor, node: MeshNode, exits: TunnelExits, dir: string }

async function host (name: string, clusterKey: Uint8Array, bootstrap: string[]): Promise<Host> {
  const dir = join(root, name)
  dataDirs.push(dir)
  const hv = new QemuHypervisor({ dataDir: dir, accel: 'tcg', imageDirs: [guest.dir] })
  drivers.push(hv)
  const node = await createMeshNode({ privateKey: (await generateIdentity()).privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, clusterKey, clusterName: 'mig', timing: 'local' })
  nodes.push(node)
  const exits = new TunnelExits(node.libp2p)
  await exits.start()
  return { hv, node, exits, dir }
}

interface Moved { result: MigrationResult, pauseMs: number, counterBefore: number, sent: number }

/** Prepare on `to`, tunnel both channels, migrate, resume on `to`, quit on `from`. */
async function migrateThroughMesh (from: Host, to: Host, spec: VmSpec, session: string): Promise<Moved> {
  const incoming = await to.hv.prepareIncoming(spec, { disks: 'mirror' })
  const exposed = [to.exits.expose({ session, channel: 'ram', socketPath: incoming.migrationSocket, peer: from.node.hostId })]
  if (incoming.nbdSocket !== undefined) exposed.push(to.exits.expose({ session, channel: 'nbd', socketPath: incoming.nbdSocket, peer: from.node.hostId }))
  const ram = await openTunnelEntrance(from.node.libp2p, { peer: to.node.hostId, session, channel: 'ram', socketPath: join(from.dir, `${session}.ram`) })
  const nbd = await openTunnelEntrance(from.node.libp2p, { peer: to.node.hostId, session, channel: 'nbd', socketPath: join(from.dir, `${session}.nbd`) })
  try {
    const result = await from.hv.migrateOut(spec.id, { migrationSocket: ram.socketPath, nbdSocket: nbd.socketPath, timeoutMs: 60_000, downtimeLimitMs: DOWNTIME_LIMIT_MS })
    const counterBefore = await lastCounter((await from.hv.inspect(spec.id)).paths.serialLog)
    const { resumedAt } = await to.hv.completeIncoming(spec.id)
    await from.hv.completeOutgoing(spec.id)
    return { result, pauseMs: resumedAt - result.stoppedAt, counterBefore, sent: ram.counters.sentBytes + nbd.counters.sentBytes }
  } finally {
    await ram.close()
    await nbd.close()
    for (const e of exposed) await e.close()
  }
}

async function migrateDirect (from: Host, to: Host, spec: VmSpec): Promise<Moved> {
  const incoming = await to.hv.prepareIncoming(spec, { disks: 'mirror' })
  const result = await from.hv.migrateOut(spec.id, { migrationSocket: incoming.migrationSocket, nbdSocket: incoming.nbdSocket, timeoutMs: 60_000, downtimeLimitMs: DOWNTIME_LIMIT_MS })
  const counterBefore = await lastCounter((await from.hv.inspect(spec.id)).paths.serialLog)
  const { resumedAt } = await to.hv.completeIncoming(spec.id)
  await from.hv.completeOutgoing(spec.id)
  return { result, pauseMs: resumedAt - result.stoppedAt, counterBefore, sent: 0 }
}

beforeAll(async () => {
  guest = await ensureGuest()
  root = await mkdtemp(join(tmpdir(), 'mv-mt-'))
}, 240_000)

afterEach(async () => {
  for (const hv of drivers.splice(0)) await hv.close()
  await Promise.all(nodes.splice(0).map(async (n) => { await n.stop() }))
  for (const dir of dataDirs.splice(0)) await killQemusUnder(dir)
})

afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

describe('live migration through the libp2p tunnel (real QEMU, TCG)', () => {
  it('moves a running 128 MiB guest with its disk over the mesh and back directly; the counter runs on', async () => {
    const key = generateClusterKey()
    const a = await host('a', key, [])
    const b = await host('b', key, [a.node.multiaddrs()[0] as string])
    await pollUntil(() => a.node.view.get(b.node.hostId) !== undefined, { timeoutMs: 10_000, what: 'a to see b' })
    const spec: VmSpec = {
      id: 'roamer', vcpus: 1, memoryMiB: 128,
      boot: { kind: 'kernel', kernel: guest.kernel, initrd: guest.initrd, cmdline: `${guest.cmdline} meshvirt.dirty_kib=1024 meshvirt.disk_kib=16` },
      disks: [{ name: 'vda', sizeMiB: 16 }]
    }
    const vm = await a.hv.create(spec)
    await a.hv.start('roamer')
    await waitForSerial(vm.paths.serialLog, /MESHVIRT-COUNTER 3\b/, 45_000)

    const tunnel = await migrateThroughMesh(a, b, spec, 'roamer-2')
    const onB = (await b.hv.inspect('roamer')).paths.serialLog
    const first = await waitForSerial(onB, /MESHVIRT-COUNTER (\d+)/, 15_000)
    expect(Number(first[1])).toBeGreaterThanOrEqual(tunnel.counterBefore)
    expect(Number(first[1])).toBeLessThanOrEqual(tunnel.counterBefore + 2)
    expect((await a.hv.inspect('roamer')).exit?.reason).toBe('migrated')
    // The whole 16 MiB disk crossed the tunnel (as NBD writes or zero-writes) plus the RAM stream.
    expect(tunnel.sent).toBeGreaterThan(tunnel.result.ramTransferredBytes)

    // Back to A over direct sockets: A's old copy goes first, as an agent discards a stale one.
    await a.hv.destroy('roamer')
    await waitForSerial(onB, new RegExp(`MESHVIRT-COUNTER ${Number(first[1]) + 2}\\b`), 15_000)
    const direct = await migrateDirect(b, a, spec)
    const onA = (await a.hv.inspect('roamer')).paths.serialLog
    const again = await waitForSerial(onA, new RegExp(`MESHVIRT-COUNTER (${direct.counterBefore}|${direct.counterBefore + 1}|${direct.counterBefore + 2})\\b`), 15_000, 0)
    expect(Number(again[1])).toBeGreaterThanOrEqual(direct.counterBefore)
    await a.hv.kill('roamer')

    const row = (m: Moved): string => `pause ${m.pauseMs.toFixed(1)} ms (QEMU downtime ${m.result.downtimeMs} ms; stop→completed ${(m.result.completedAt - m.result.stoppedAt).toFixed(1)}, mirrors ${(m.result.mirrorsDoneAt - m.result.completedAt).toFixed(1)}), ram ${m.result.ramMs} ms, mirror ${m.result.mirrorMs} ms, total ${m.result.totalMs} ms`
    console.log(`128 MiB + 16 MiB disk\n  tunnel: ${row(tunnel)}\n  direct: ${row(direct)}`)
    // Honest bounds for two shared cores under TCG; the benchmark holds the real targets.
    expect(tunnel.pauseMs).toBeLessThan(1000)
    expect(direct.pauseMs).toBeLessThan(1000)
  }, 180_000)
})
