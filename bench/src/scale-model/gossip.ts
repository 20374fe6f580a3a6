/**
 * gossipsub as packages/mesh uses it, message by message in virtual time.
 *
 * - News (a changed advert, a suspicion notice) is flood-published: the origin sends it to every
 *   connected subscriber (advert-publisher.ts `send(bytes, flood = true)`, mesh-node.ts notices;
 *   gossip-options.ts `floodPublish`). Heartbeats ride the mesh: the origin sends to its mesh peers.
 * - A host forwards a message it sees first to its mesh peers, not back to the peer it came
 *   from nor to its origin (gossipsub.js `forwardMessage`/`selectPeersToForward`). Later copies
 *   are dropped by the seen cache — cheaply, unverified, thanks to the fast message id
 *   (gossip-options.ts `fastMessageId`).
 * - IDONTWANT: gossipsub 17 tells its mesh peers "don't send me this" only for messages of at least
 *   `idontwantMinDataSize` = 512 bytes (constants.js GossipsubIdontwantMinDataSize); adverts
 *   are ~230 bytes, so it does not apply to them unless the model is given bigger adverts.
 * - IHAVE/IWANT: every gossipsub heartbeat (1 s, gossip-options.ts) a host sends the ids it
 *   received in the last 3 heartbeats (GossipsubHistoryGossip) to max(Dlazy, 0.25 × candidates)
 *   connected non-mesh peers (`doEmitGossip`); a peer missing one asks with IWANT and gets it.
 *   Only simulated when messages can be lost ('drop'): otherwise no IWANT ever follows.
 * - Each copy costs the receiver a service time on its event loop (network.ts Cpu): a first copy
 *   `firstCopyMs` (decrypt, parse, signature verification, validator, view update, forwarding),
 *   a duplicate or a control message `copyMs` (decrypt, parse, seen-cache lookup).
 */
import type { Cpu, Network } from './network.js'
import { EventQueue } from './event-queue.js'
import type { Random } from './random.js'
import type { Topology } from './topology.js'

export interface GossipParams {
  copyMs: number
  firstCopyMs: number
  dlazy: number
  gossipFactor: number
  gossipHeartbeatMs: number
  historyGossip: number
  idontwantMinBytes: number
  /** Simulate IHAVE/IWANT repair (needed only when copies can be lost). */
  ihave: boolean
}

export const K = { publish: 0, arrive: 1, processed: 2, gossip: 3, ihave: 4, iwant: 5, iwantServe: 6 } as const
/** Kinds from this number on are handed to `external`. */
export const FIRST_EXTERNAL_KIND = 10

export interface Message { origin: number, flood: boolean, bytes: number, claimed: Uint8Array, seenAt: Float64Array, seen: number, idontwant?: Set<number> }

export class GossipSim {
  readonly q = new EventQueue()
  /** Hosts that stopped (set with markDead). */
  readonly dead: Uint8Array
  private deadCount = 0
  readonly messages: Message[] = []
  /** Counted at the receiving host. */
  dataCopies = 0
  controlMsgs = 0
  bytes = 0
  onSeen: ((msg: number, host: number, t: number) => void) | undefined
  external: ((kind: number, a: number, b: number, c: number) => void) | undefined
  private readonly gossipPhase: Float64Array
  private readonly ev = { kind: 0, a: 0, b: 0, c: 0 }

  constructor (readonly topo: Topology, readonly params: GossipParams, readonly cpu: Cpu, readonly net: Network, readonly rng: Random) {
    this.dead = new Uint8Array(topo.n)
    this.gossipPhase = new Float64Array(topo.n).map(() => rng.uniform(0, params.gossipHeartbeatMs))
  }

  /** Publishes a message from `origin` at `at` (flood: to every connection; else to the mesh). */
  publish (origin: number, at: number, flood: boolean, bytes: number): number {
    const n = this.topo.n
    const m: Message = { origin, flood, bytes, claimed: new Uint8Array(n), seenAt: new Float64Array(n).fill(Infinity), seen: 0 }
    if (bytes >= this.params.idontwantMinBytes) m.idontwant = new Set()
    m.claimed[origin] = 1
    m.seenAt[origin] = at
    this.messages.push(m)
    this.q.push(at, K.publish, this.messages.length - 1)
    return this.messages.length - 1
  }

  /** Frees a finished message's per-host arrays (long runs publish thousands). */
  release (msg: number): void {
    const m = this.messages[msg]
    if (m !== undefined) { m.claimed = new Uint8Array(0); m.seenAt = new Float64Array(0); delete m.idontwant }
  }

  /** Handles events up to `until` (virtual ms), or until `done()` holds. */
  run (until = Infinity, done?: () => boolean): void {
    const ev = this.ev
    while (this.q.peekTime() <= until && done?.() !== true && this.q.pop(ev)) this.handle(ev.kind, ev.a, ev.b, ev.c)
  }

  /** A host stops: it receives, forwards and answers nothing from now on. */
  markDead (h: number): void {
    if (this.dead[h] === 1) return
    this.dead[h] = 1
    this.deadCount++
  }

  /** True once every live host but the origin has processed `msg`. */
  reachedAll (msg: number): boolean {
    const m = this.messages[msg] as Message
    return m.seen >= this.topo.n - this.deadCount - (this.dead[m.origin] === 0 ? 1 : 0)
  }

  /** Sends a copy of `msg` from `from` to `to` over the network (lost to a dead host). */
  send (from: number, to: number, kind: number, msg: number): void {
    if (this.dead[to] === 1 || this.dead[from] === 1) return
    const d = this.net.delay()
    if (d >= 0) this.q.push(this.q.now + d, kind, to, msg, from)
  }

  private handle (kind: number, a: number, b: number, c: number): void {
    const p = this.params
    const now = this.q.now
    // A released message's late events (IHAVE rounds, stray copies) are over.
    if (kind < FIRST_EXTERNAL_KIND && kind !== K.publish && (this.messages[b] as Message).claimed.length === 0) return
    switch (kind) {
      case K.publish: {
        const m = this.messages[a] as Message
        if (this.dead[m.origin] === 1) return
        for (const to of m.flood ? this.topo.peers[m.origin] as number[] : this.topo.mesh[m.origin] as number[]) this.send(m.origin, to, K.arrive, a)
        if (p.ihave) this.scheduleGossip(m.origin, a, 0)
        return
      }
      case K.arrive: {
        if (this.dead[a] === 1) return
        const m = this.messages[b] as Message
        this.dataCopies++
        this.bytes += m.bytes
        if (m.claimed[a] === 1) { this.cpu.run(a, now, p.copyMs); return }
        m.claimed[a] = 1
        this.q.push(this.cpu.run(a, now, p.firstCopyMs), K.processed, a, b, c)
        return
      }
      case K.processed: {
        if (this.dead[a] === 1) return
        const m = this.messages[b] as Message
        m.seenAt[a] = now
        m.seen++
        const mesh = this.topo.mesh[a] as number[]
        if (m.idontwant !== undefined) {
          for (const to of mesh) if (to !== c) { m.idontwant.add(a * this.topo.n + to); this.control(to) }
        }
        for (const to of mesh) {
          if (to === c || to === m.origin) continue
          if (m.idontwant?.has(to * this.topo.n + a) === true) continue
          this.send(a, to, K.arrive, b)
        }
        if (p.ihave) this.scheduleGossip(a, b, 0)
        this.onSeen?.(b, a, now)
        return
      }
      case K.gossip: {
        if (this.dead[a] === 1) return
        const mesh = new Set(this.topo.mesh[a])
        const candidates = (this.topo.peers[a] as number[]).filter((x) => !mesh.has(x) && this.dead[x] === 0)
        const target = Math.min(candidates.length, Math.max(p.dlazy, Math.floor(p.gossipFactor * candidates.length)))
        for (const to of this.rng.sample(candidates, target)) this.send(a, to, K.ihave, b)
        if (c + 1 < p.historyGossip) this.scheduleGossip(a, b, c + 1)
        return
      }
      case K.ihave: {
        if (this.dead[a] === 1) return
        this.controlMsgs++
        this.bytes += CONTROL_BYTES
        this.cpu.run(a, now, p.copyMs)
        if ((this.messages[b] as Message).claimed[a] === 0) this.send(a, c, K.iwant, b)
        return
      }
      case K.iwant: {
        if (this.dead[a] === 1) return
        this.controlMsgs++
        this.bytes += CONTROL_BYTES
        this.q.push(this.cpu.run(a, now, p.copyMs), K.iwantServe, a, b, c)
        return
      }
      case K.iwantServe:
        this.send(a, c, K.arrive, b)
        return
      default:
        this.external?.(kind, a, b, c)
    }
  }

  private control (to: number): void {
    if (this.dead[to] === 1) return
    this.controlMsgs++
    this.bytes += CONTROL_BYTES
    this.cpu.run(to, this.q.now, this.params.copyMs)
  }

  private scheduleGossip (h: number, msg: number, round: number): void {
    const hb = this.params.gossipHeartbeatMs
    const phase = this.gossipPhase[h] as number
    const next = phase + Math.ceil((this.q.now - phase + 1e-9) / hb) * hb
    this.q.push(round === 0 ? next : this.q.now + hb, K.gossip, h, msg, round)
  }
}

/** An IHAVE/IWANT/IDONTWANT with one id: a 46-byte StrictSign id plus framing (yamux, noise, protobuf). */
export const CONTROL_BYTES = 100
