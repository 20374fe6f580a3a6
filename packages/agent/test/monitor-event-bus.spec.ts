import { peerIdFromString } from '@libp2p/peer-id'
import { generateIdentity, type ClusterViewEvent, type HostIdentity, type MeshNode, type RequestHandler } from '@meshvirt/mesh'
import { pb } from '@meshvirt/proto'
import { afterEach, describe, expect, it } from 'vitest'
import { silentLogger } from '../src/log/logger.js'
import { EventBus, EVENTS_PROTOCOL, GAP_WAIT_MS } from '../src/monitor/event-bus.js'
import { pollUntil } from '@meshvirt/testkit/poll'

type Listener = (evt: CustomEvent) => void

/**
 * A network of fake mesh nodes for EventBus alone: pubsub delivery that a test can drop, delay
 * or reorder per message, request/response between the nodes, and a view of who is there.
 * Validators and handlers run as they would under libp2p.
 */
class FakeNet {
  readonly nodes = new Map<string, FakeNode>()
  /** Decides each delivery: 'drop', a delay in ms, or undefined for at once. */
  route: (from: string, to: string, index: number) => 'drop' | number | undefined = () => undefined
  private published = 0

  publish (from: FakeNode, topic: string, data: Uint8Array): void {
    const index = this.published++
    for (const to of this.nodes.values()) {
      if (to === from || !to.topics.has(topic)) continue
      const r = this.route(from.hostId, to.hostId, index)
      if (r === 'drop') continue
      const deliver = (): void => { void to.deliver(from.hostId, topic, data) }
      if (r === undefined) queueMicrotask(deliver)
      else setTimeout(deliver, r)
    }
  }
}

class FakeNode {
  readonly topicValidators = new Map<string, (peer: unknown, msg: unknown) => Promise<string> | string>()
  readonly handlers = new Map<string, RequestHandler>()
  readonly pulls: string[] = []
  /** The topics this node subscribes to: gossip reaches only subscribers. */
  readonly topics = new Set<string>()
  private readonly listeners = new Set<Listener>()
  private readonly viewListeners = new Set<(e: ClusterViewEvent) => void>()

  constructor (readonly net: FakeNet, readonly identity: HostIdentity, public incarnation = 1) {
    net.nodes.set(identity.hostId, this)
    for (const other of net.nodes.values()) if (other !== this) other.viewEvent('joined', this.hostId)
  }

  get hostId (): string {
    return this.identity.hostId
  }

  async deliver (from: string, topic: string, data: Uint8Array): Promise<void> {
    const msg = { type: 'signed', from: peerIdFromString(from), topic, data }
    const validator = this.topicValidators.get(topic)
    if (validator !== undefined && await validator(undefined, msg) !== 'accept') return
    for (const l of this.listeners) l(new CustomEvent('message', { detail: msg }))
  }

  viewEvent (type: 'joined', hostId: string): void {
    for (const l of this.viewListeners) l({ type, host: { hostId, self: false } } as unknown as ClusterViewEvent)
  }

  asMesh (): MeshNode {
    const node = this
    return {
      hostId: this.hostId,
      get incarnation () { return node.incarnation },
      view: {
        hosts: () => [...this.net.nodes.values()].map((n) => ({ hostId: n.hostId, self: n === this, liveness: 'alive' })),
        subscribe: (l: (e: ClusterViewEvent) => void) => { this.viewListeners.add(l); return () => { this.viewListeners.delete(l) } }
      },
      libp2p: {
        services: {
          pubsub: {
            topicValidators: this.topicValidators,
            addEventListener: (_t: string, l: Listener) => { this.listeners.add(l) },
            removeEventListener: (_t: string, l: Listener) => { this.listeners.delete(l) },
            subscribe: (topic: string) => { this.topics.add(topic) },
            unsubscribe: (topic: string) => { this.topics.delete(topic) },
            publish: async (topic: string, data: Uint8Array) => { this.net.publish(this, topic, data); return { recipients: [] } }
          }
        }
      },
      handle: async (protocol: string, h: RequestHandler) => { this.handlers.set(protocol, h) },
      unhandle: async (protocol: string) => { this.handlers.delete(protocol) },
      request: async (peer: string, protocol: string, bytes: Uint8Array) => {
        const h = this.net.nodes.get(peer)?.handlers.get(protocol)
        if (h === undefined) throw new Error(`${peer} does not speak ${protocol}`)
        this.pulls.push(peer)
        return await h(bytes, this.hostId, new AbortController().signal)
      }
    } as unknown as MeshNode
  }
}

describe('EventBus ordering and repair', () => {
  const buses: EventBus[] = []
  afterEach(async () => { await Promise.all(buses.splice(0).map(async (b) => { await b.stop() })) })

  /** A host's bus, read there (following the stream) unless `follow` is false. */
  async function bus (net: FakeNet, incarnation = 1, identity?: HostIdentity, opts: { follow?: boolean, followMs?: number } = {}): Promise<{ bus: EventBus, node: FakeNode }> {
    const node = new FakeNode(net, identity ?? await generateIdentity(), incarnation)
    const b = new EventBus({ mesh: node.asMesh(), clusterName: 'test', privateKey: node.identity.privateKey, log: silentLogger, ...(opts.followMs !== undefined ? { followMs: opts.followMs } : {}) })
    await b.start()
    buses.push(b)
    if (opts.follow ?? true) await b.follow()
    return { bus: b, node }
  }
  const seqsFrom = (b: EventBus, hostId: string): Array<[number, number]> =>
    b.ring.list().events.filter((r) => r.event.hostId === hostId).map((r) => [r.event.incarnation, r.event.seq])
  const emitVms = async (b: EventBus, n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await b.emit({ kind: 'vm-created', vmId: `vm-${i}`, vmName: `n${i}` })
  }

  it('fills a lost message by pulling it from the emitter, and keeps the emitter\'s order', async () => {
    const net = new FakeNet()
    const a = await bus(net)
    const b = await bus(net)
    net.route = (from, _to, index) => from === a.node.hostId && index === 1 ? 'drop' : undefined
    await emitVms(a.bus, 3)
    await pollUntil(() => seqsFrom(b.bus, a.node.hostId).length === 3, { timeoutMs: 5_000, intervalMs: 10, what: 'three events on B' })
    expect(seqsFrom(b.bus, a.node.hostId)).toEqual([[1, 1], [1, 2], [1, 3]])
    expect(b.bus.counters).toMatchObject({ received: 2, pulled: 1, gapsAccepted: 0 })
  })

  it('waits for a reordered message instead of pulling it', async () => {
    const net = new FakeNet()
    const a = await bus(net)
    const b = await bus(net)
    b.node.pulls.length = 0
    net.route = (from, _to, index) => from === a.node.hostId && index === 0 ? GAP_WAIT_MS / 5 : undefined
    await emitVms(a.bus, 3)
    await pollUntil(() => seqsFrom(b.bus, a.node.hostId).length === 3, { timeoutMs: 5_000, intervalMs: 10, what: 'three events on B' })
    expect(seqsFrom(b.bus, a.node.hostId)).toEqual([[1, 1], [1, 2], [1, 3]])
    expect(b.node.pulls).toEqual([])
  })

  it('gives a host that comes later what the others emitted before', async () => {
    const net = new FakeNet()
    const a = await bus(net)
    await emitVms(a.bus, 5)
    const b = await bus(net)
    await pollUntil(() => seqsFrom(b.bus, a.node.hostId).length === 5, { timeoutMs: 5_000, intervalMs: 10, what: 'A\'s history on B' })
    expect(b.bus.ring.list().events.map((r) => r.event.vmName)).toEqual(['n0', 'n1', 'n2', 'n3', 'n4'])
  })

  it('follows an emitter into its next incarnation, and ignores its old one after', async () => {
    const net = new FakeNet()
    const identity = await generateIdentity()
    const a1 = await bus(net, 1, identity)
    const b = await bus(net)
    await emitVms(a1.bus, 2)
    await pollUntil(() => seqsFrom(b.bus, identity.hostId).length === 2, { timeoutMs: 5_000, intervalMs: 10, what: 'first incarnation on B' })
    await a1.bus.stop()
    net.nodes.delete(identity.hostId)
    const a2 = await bus(net, 2, identity)
    await emitVms(a2.bus, 1)
    await pollUntil(() => seqsFrom(b.bus, identity.hostId).length === 3, { timeoutMs: 5_000, intervalMs: 10, what: 'second incarnation on B' })
    expect(seqsFrom(b.bus, identity.hostId)).toEqual([[1, 1], [1, 2], [2, 1]])
  })

  it('a host nobody reads on keeps only its own events and receives none; the first read pulls what each host keeps, then follows', async () => {
    const net = new FakeNet()
    const a = await bus(net, 1, undefined, { follow: false })
    const b = await bus(net, 1, undefined, { follow: false })
    await emitVms(a.bus, 3)
    await emitVms(b.bus, 1)
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(seqsFrom(b.bus, a.node.hostId)).toEqual([])
    expect(seqsFrom(b.bus, b.node.hostId)).toEqual([[1, 1]])
    expect([b.bus.counters.received, b.bus.isFollowing, b.node.topics.size]).toEqual([0, false, 0])
    // Read on B: the first page already holds A's events (pulled), in A's order.
    await b.bus.follow()
    expect(b.bus.isFollowing).toBe(true)
    expect(seqsFrom(b.bus, a.node.hostId)).toEqual([[1, 1], [1, 2], [1, 3]])
    expect(b.bus.counters.pulled).toBe(3)
    await a.bus.emit({ kind: 'vm-started', vmId: 'vm-0', vmName: 'n0' })
    await pollUntil(() => seqsFrom(b.bus, a.node.hostId).length === 4, { timeoutMs: 5_000, intervalMs: 10, what: 'A\'s next event on B' })
    expect(b.bus.counters).toMatchObject({ received: 1, pulled: 3 })
    // A is still read by nobody: B's events do not reach it.
    expect(seqsFrom(a.bus, b.node.hostId)).toEqual([])
  })

  it('stops following a while after the last read, not while a reader holds it; the next read pulls what was missed', async () => {
    const net = new FakeNet()
    const a = await bus(net, 1, undefined, { follow: false })
    const b = await bus(net, 1, undefined, { followMs: 100 })
    await emitVms(a.bus, 1)
    await pollUntil(() => seqsFrom(b.bus, a.node.hostId).length === 1, { timeoutMs: 5_000, intervalMs: 10, what: 'A\'s event on B' })
    await pollUntil(() => !b.bus.isFollowing, { timeoutMs: 5_000, intervalMs: 10, what: 'B to stop following' })
    expect(b.node.topics.size).toBe(0)
    await emitVms(a.bus, 3) // vm-0 … vm-2 again: A's seq 2, 3, 4, not received by B
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(seqsFrom(b.bus, a.node.hostId)).toEqual([[1, 1]])
    const release = b.bus.hold()
    await pollUntil(() => seqsFrom(b.bus, a.node.hostId).length === 4, { timeoutMs: 5_000, intervalMs: 10, what: 'what B missed, pulled' })
    expect(seqsFrom(b.bus, a.node.hostId)).toEqual([[1, 1], [1, 2], [1, 3], [1, 4]])
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(b.bus.isFollowing).toBe(true)
    release()
    await pollUntil(() => !b.bus.isFollowing, { timeoutMs: 5_000, intervalMs: 10, what: 'B to stop following once released' })
  })

  it('answers a pull with its own events only, oldest first after the position', async () => {
    const net = new FakeNet()
    const a = await bus(net)
    const b = await bus(net)
    await emitVms(b.bus, 1)
    await emitVms(a.bus, 4)
    await pollUntil(() => seqsFrom(a.bus, b.node.hostId).length === 1, { timeoutMs: 5_000, intervalMs: 10, what: 'B\'s event on A' })
    const answer = await a.node.handlers.get(EVENTS_PROTOCOL)!(pb.EventsPull.encode({ incarnation: 1, afterSeq: 1, limit: 2 }).finish(), b.node.hostId, new AbortController().signal)
    const events = pb.EventsBatch.decode(answer).events.map((s) => pb.ClusterEvent.decode(s.event as Uint8Array))
    expect(events.map((e) => [e.hostId === a.node.hostId, Number(e.seq)])).toEqual([[true, 2], [true, 3]])
  })
})
