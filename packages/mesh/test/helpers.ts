import { CHANNEL_PROTOCOL, createMeshNode, generateClusterKey, generateIdentity, type HostCapacity, type HostIdentity, type MeshNode, type MeshNodeInit } from '../src/index.js'

/** A host's capacity with `vcpus` CPUs, `allocatedVcpus` of them taken. */
export const capacity = (vcpus: number, allocatedVcpus = 0): HostCapacity => ({
  total: { vcpus, memoryBytes: 8 * 2 ** 30, diskBytes: 100 * 2 ** 30 },
  hostReserved: { vcpus: 0, memoryBytes: 2 ** 30, diskBytes: 0 },
  allocated: { vcpus: allocatedVcpus, memoryBytes: 0, diskBytes: 0 },
  reservations: { vcpus: 0, memoryBytes: 0, diskBytes: 0 },
  overcommit: { cpu: 4, memory: 1, disk: 1 }
})

/** Starts and stops test nodes; `stopAll()` belongs in afterEach. */
export class TestCluster {
  readonly clusterKey = generateClusterKey()
  readonly nodes: MeshNode[] = []

  async start (identity?: HostIdentity, overrides: Partial<MeshNodeInit> = {}): Promise<MeshNode> {
    const id = identity ?? await generateIdentity()
    const first = this.nodes.find((n) => n.libp2p.status === 'started')
    const node = await createMeshNode({
      privateKey: id.privateKey,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: first === undefined ? [] : [first.multiaddrs()[0] as string],
      clusterKey: this.clusterKey,
      clusterName: 'test',
      timing: 'local',
      advert: { capacity: capacity(8), labels: { zone: 'a' } },
      ...overrides
    })
    this.nodes.push(node)
    return node
  }

  running (): MeshNode[] {
    return this.nodes.filter((n) => n.libp2p.status === 'started')
  }

  async stopAll (): Promise<void> {
    await Promise.all(this.nodes.map(async (n) => { await n.stop() }))
    this.nodes.length = 0
  }
}

/** Whether `a` knows (identify) that `b` serves request channels. */
export async function knowsChannel (a: MeshNode, b: MeshNode): Promise<boolean> {
  return (await a.libp2p.peerStore.get(b.peerId)).protocols.includes(CHANNEL_PROTOCOL)
}
