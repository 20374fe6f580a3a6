/**
 * One "host" of the migration benchmark, as its own process (as each host's agent is): a mesh node,
 * a QEMU driver and the tunnel exits, driven by the benchmark over IPC. Each operation is what an
 * agent does at that step of a migration; the orchestration itself stays in migration.ts.
 */
import '@meshvirt/mesh/polyfill'
import { join } from 'node:path'
import { QemuHypervisor, waitForSerialLine, type Accelerator, type IncomingTcp, type MigrateOutOptions, type VmSpec } from '@meshvirt/hypervisor'
import { TunnelExits, createMeshNode, generateIdentity, openTunnelEntrance, type TunnelEntrance, type TunnelExit } from '@meshvirt/mesh'

export interface HostInit { dataDir: string, guestDir: string, clusterKey: string, bootstrap: string[], accel: Accelerator }

export type HostRequest =
  | { op: 'boot', spec: VmSpec }
  /** `session` + `peer`: expose the sockets through the mesh tunnel; `tcp`: QEMU listens on TCP (the direct baseline). */
  | { op: 'prepare', spec: VmSpec, session?: string, peer?: string, tcp?: IncomingTcp }
  | { op: 'migrate-out', id: string, via: { tunnel: { peer: string, session: string } } | { direct: { migrationSocket: string, nbdSocket?: string } }, params: Partial<MigrateOutOptions> }
  | { op: 'complete-incoming', id: string }
  | { op: 'complete-outgoing', id: string }
  | { op: 'destroy', id: string }
  | { op: 'shutdown' }

const init = JSON.parse(process.env.MV_BENCH_HOST ?? '{}') as HostInit
const hv = new QemuHypervisor({ dataDir: init.dataDir, accel: init.accel, imageDirs: [init.guestDir] })
const node = await createMeshNode({
  privateKey: (await generateIdentity()).privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: init.bootstrap,
  clusterKey: Buffer.from(init.clusterKey, 'base64'), clusterName: 'bench', timing: 'local'
})
const exits = new TunnelExits(node.libp2p)
await exits.start()
const exposed = new Map<string, TunnelExit[]>()
const entrances = new Map<string, TunnelEntrance[]>()

async function handle (req: HostRequest): Promise<unknown> {
  switch (req.op) {
    case 'boot': {
      const vm = await hv.create(req.spec)
      await hv.start(req.spec.id)
      await waitForSerialLine(vm.paths.serialLog, /MESHVIRT-COUNTER 3\b/, { timeoutMs: 300_000 })
      return {}
    }
    case 'prepare': {
      const incoming = await hv.prepareIncoming(req.spec, { disks: 'mirror', ...(req.tcp !== undefined ? { tcp: req.tcp } : {}) })
      if (req.session !== undefined && req.peer !== undefined) {
        const list = [exits.expose({ session: req.session, channel: 'ram', socketPath: incoming.migrationSocket, peer: req.peer })]
        if (incoming.nbdSocket !== undefined) list.push(exits.expose({ session: req.session, channel: 'nbd', socketPath: incoming.nbdSocket, peer: req.peer }))
        exposed.set(req.spec.id, list)
      }
      return incoming
    }
    case 'migrate-out': {
      if ('direct' in req.via) return { result: await hv.migrateOut(req.id, { ...req.params, ...req.via.direct }) }
      const { peer, session } = req.via.tunnel
      const dir = (await hv.inspect(req.id)).paths.dir
      const ram = await openTunnelEntrance(node.libp2p, { peer, session, channel: 'ram', socketPath: join(dir, 'out-ram.sock') })
      const nbd = await openTunnelEntrance(node.libp2p, { peer, session, channel: 'nbd', socketPath: join(dir, 'out-nbd.sock') })
      // The tunnels stay open until the hand-over is over (complete-outgoing): closing them cuts the
      // source's NBD connection, and nothing may stand between migrateOut() and the destination's cont.
      entrances.set(req.id, [ram, nbd])
      try {
        const result = await hv.migrateOut(req.id, { ...req.params, migrationSocket: ram.socketPath, nbdSocket: nbd.socketPath })
        return { result, ramBytes: ram.counters.sentBytes, nbdBytes: nbd.counters.sentBytes }
      } catch (err) {
        await closeEntrances(req.id)
        throw err
      }
    }
    case 'complete-incoming': {
      const done = await hv.completeIncoming(req.id)
      for (const e of exposed.get(req.id) ?? []) await e.close()
      exposed.delete(req.id)
      return { resumedAt: done.resumedAt }
    }
    case 'complete-outgoing':
      await hv.completeOutgoing(req.id)
      await closeEntrances(req.id)
      return {}
    case 'destroy':
      await hv.destroy(req.id)
      return {}
    case 'shutdown':
      for (const vm of await hv.list()) await hv.destroy(vm.id).catch(() => {})
      await exits.stop()
      await node.stop()
      setImmediate(() => process.exit(0))
      return {}
  }
}

async function closeEntrances (id: string): Promise<void> {
  for (const e of entrances.get(id) ?? []) await e.close()
  entrances.delete(id)
}

process.on('message', (msg: { seq: number, req: HostRequest }) => {
  handle(msg.req).then(
    (result) => process.send?.({ seq: msg.seq, ok: true, result }),
    (err: unknown) => process.send?.({ seq: msg.seq, ok: false, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) })
  )
})
process.send?.({ seq: 0, ok: true, result: { hostId: node.hostId, addr: node.multiaddrs()[0] } })
