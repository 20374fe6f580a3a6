/**
 * The replication benchmark's rig: one owner (a real QEMU guest) and replica holders, each a libp2p
 * node in this process with a ReplicaHolderService over its own dir, and the owner's point cycle:
 * take a point, ship it to every holder in parallel (each holder behind its own bandwidth bound).
 */
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { OutgoingPoint, ReplicaHolderService, shipPoint, TokenBucket, type ShipResult } from '@meshvirt/agent'
import type { QemuHypervisor, PointKind } from '@meshvirt/hypervisor'
import { createMeshNode, generateClusterKey, generateIdentity, type MeshNode } from '@meshvirt/mesh'

export interface Holder {
  node: MeshNode
  service: ReplicaHolderService
  bucket: TokenBucket
}

export interface Cycle {
  seq: number
  kind: PointKind
  takenAt: number
  /** Bytes the point ships (its data extents). */
  pointBytes: number
  /** takePoint(): the transaction, the backup job, the point's bookkeeping. */
  takeMs: number
  /** The QMP transaction alone: the guest's I/O is drained only this long. */
  transactionMs: number
  /** Per holder: ship result (ackedAt on the owner's clock, holder apply time). */
  shipped: ShipResult[]
  /** takePoint() → the last holder's ack. */
  cycleMs: number
}

export class ReplicationRig {
  readonly holders: Holder[] = []
  private owner: MeshNode | undefined
  private readonly clusterKey = generateClusterKey()

  constructor (private readonly hv: QemuHypervisor, private readonly vmId: string, private readonly root: string, private readonly bandwidthBytesPerSec: number) {}

  async start (holders: number): Promise<void> {
    this.owner = await this.node([])
    for (let i = 0; i < holders; i++) await this.addHolder()
  }

  async addHolder (): Promise<Holder> {
    const owner = this.owner as MeshNode
    const node = await this.node([owner.multiaddrs()[0] as string])
    const service = new ReplicaHolderService(node.libp2p, { root: join(this.root, `holder-${this.holders.length + 1}`) })
    await service.start()
    await owner.libp2p.dial(node.libp2p.getMultiaddrs())
    const holder = { node, service, bucket: new TokenBucket({ bytesPerSec: this.bandwidthBytesPerSec }) }
    this.holders.push(holder)
    return holder
  }

  /** One cycle: a point of the running guest, shipped to `to` (default: every holder), then released. */
  async cycle (kind: PointKind, to: Holder[] = this.holders): Promise<Cycle> {
    const t0 = performance.now()
    const point = await this.hv.replication.takePoint(this.vmId, { kind })
    const takeMs = performance.now() - t0
    const out = new OutgoingPoint(await this.hv.replication.openPoint(this.vmId, point.seq), { epoch: 1 })
    try {
      const shipped = await Promise.all(to.map(async (h) => await shipPoint((this.owner as MeshNode).libp2p, h.node.hostId, out, { bucket: h.bucket })))
      return {
        seq: point.seq, kind, takenAt: point.takenAt, pointBytes: out.header.dataBytes, takeMs, transactionMs: point.transactionMs,
        shipped, cycleMs: performance.now() - t0
      }
    } finally {
      await out.close()
      await this.hv.replication.releasePoint(this.vmId, point.seq)
    }
  }

  /**
   * The same loopback libp2p path without the replica protocol: `bytes` pushed down one raw stream to
   * the first holder, MiB/s. The anchor for the full copy's throughput (the transport's ciphers in JS
   * bound both, and here both ends share this process's CPU).
   */
  async streamBaseline (bytes: number): Promise<number> {
    const holder = this.holders[0] as Holder
    const protocol = '/meshvirt/bench/raw/1.0.0'
    await holder.node.libp2p.handle(protocol, async (stream) => { for await (const _ of stream) { /* drain */ } await stream.close() })
    try {
      const stream = await (this.owner as MeshNode).libp2p.dialProtocol(holder.node.peerId, protocol)
      const piece = new Uint8Array(1024 * 1024).fill(0x5a)
      const t0 = performance.now()
      for (let sent = 0; sent < bytes; sent += piece.length) if (!stream.send(piece)) await stream.onDrain()
      await stream.close()
      return bytes / (1024 * 1024) / ((performance.now() - t0) / 1000)
    } finally {
      await holder.node.libp2p.unhandle(protocol)
    }
  }

  async stop (): Promise<void> {
    for (const h of this.holders) await h.service.stop()
    for (const h of this.holders) await h.node.stop()
    await this.owner?.stop()
  }

  private async node (bootstrap: string[]): Promise<MeshNode> {
    return await createMeshNode({
      privateKey: (await generateIdentity()).privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], clusterKey: this.clusterKey,
      clusterName: 'bench-replication', timing: 'local', bootstrap
    })
  }
}
