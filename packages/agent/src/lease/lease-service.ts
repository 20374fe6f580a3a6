/**
 * Runs the lease protocol for real: the LeaseTable's messages over `/meshvirt/lease/1.0.0`
 * (request/response, batched per peer), its timer, and its effects through the hooks the agent
 * implements (fence, resume, promote, demote, persistence, events).
 *
 * Ordering rules the safety argument needs, kept here:
 * - a `persist` is written (awaited) before any answer or request that follows from it leaves;
 * - hooks of one VM run one at a time, in the order the table asked for them;
 * - while a hook of a VM runs, the agent's report of that VM (`ownedGroups`) is not fed back to the
 *   table (a guest being promoted is not "down" yet);
 * - time is `performance.timeOrigin + performance.now()`: monotonic, and close to Unix ms, so the
 *   instants in events and `state()` read as wall-clock times.
 */
import { performance } from 'node:perf_hooks'
import type { MeshNode } from '@meshvirt/mesh'
import type { Logger } from '../log/logger.js'
import { LEASE_IDLE_TICK_MS, LEASE_PROTOCOL, LEASE_TICK_MS } from './constants.js'
import { LeaseProtocolError } from './errors.js'
import { decodeLeaseRequest, decodeLeaseResponse, encodeLeaseError, encodeLeaseRequest, encodeLeaseResponse } from './lease-codec.js'
import { LeaseTable, type OwnedGroup } from './lease-table.js'
import { leaseTiming, type LeaseTiming, type LeaseTimingConfig } from './lease-timing.js'
import { KeyedQueue } from '../util/keyed-queue.js'
import { RateLimitedLog } from './rate-limited-log.js'
import type { LeaseAnswerMessage, LeaseEffect, LeaseEvent, LeasePosition, LeaseRefusal, LeaseRequestMessage, LeaseState, PersistedLease } from './types.js'

/** A refusal that points at a misbehaving peer is logged at most this often per reason (the rest are counted). */
const REFUSAL_LOG_EVERY_MS = 10_000

/** What the agent does for the lease protocol. Hooks may throw: the service logs and goes on. */
export interface LeaseHooks {
  /**
   * Replicated VMs this host owns now, with their groups (holders + witness) and their guest
   * state. Called every tick: keep it cheap (memory, not the store). Report a guest stopped by
   * `fence` as `down` (the lease resumes it), one stopped by the operator as `stopped`.
   */
  ownedGroups: () => OwnedGroup[]
  /** This host's replica position of the VM; undefined when it holds none (a witness). */
  replicaPosition: (vmId: string) => LeasePosition | undefined
  /**
   * Stop the guest now: the lease is about to end (or a newer owner exists). Must be over within
   * `maxFenceMs` of being called, or the safety margin is gone: prefer QMP `stop` (vCPUs paused in
   * ms; `resume` is then QMP `cont`), then kill at leisure. Record that it happened, and why.
   */
  fence: (vmId: string, reason: string) => Promise<void>
  /** The lease is held again at the same epoch: run the guest again (undo `fence`, or start it). */
  resume: (vmId: string) => Promise<void>
  /**
   * This host was elected owner at `epoch` and holds the lease: record ownership at that epoch
   * (durably, first), then start the VM from this host's replica. ownedGroups lists it from then on.
   */
  promote: (vmId: string, epoch: number) => Promise<void>
  /**
   * Another host owns the VM at `epoch` (`owner`; undefined when the winner is not known yet): keep
   * the guest stopped, stop listing it in ownedGroups, and turn its disk into a replica.
   */
  demote: (vmId: string, epoch: number, owner: string | undefined) => Promise<void>
  /** The durable lease records (votes, promises, groups) saved by `saveLease`, at start. */
  loadLeases: () => PersistedLease[] | Promise<PersistedLease[]>
  /** Save one VM's lease record durably (replace): it must be on disk when the promise resolves. */
  saveLease: (state: PersistedLease) => Promise<void>
  /** Lease lost, fenced, resumed, candidate, elected, promoted, demoted, restarted; `at` is Unix ms. */
  event: (e: LeaseEvent) => void
  /**
   * The owner's lease was renewed: unless renewed again, this host fences the VM at `fenceAt`
   * (Unix ms, mapped from the monotonic clock at the call). For a watchdog that outlives the agent:
   * arm it to kill the guest at `fenceAt`. Called on every renewal round that extends the lease.
   */
  renewed?: (vmId: string, epoch: number, fenceAt: number) => void
  /**
   * Whether host `from` may start lease state here for a VM this host has none of (its first
   * renewal): e.g. this host holds a replica from it, or its signed advert lists the VM as its own.
   * Absent: anyone may. Keep it cheap (memory, not the store): it runs for every such renewal.
   */
  vouches?: (vmId: string, from: string) => boolean
}

export interface LeaseServiceInit {
  hooks: LeaseHooks
  timing?: Partial<LeaseTimingConfig>
  /**
   * Whether this host may have granted leases before this start (any start but the very first of
   * its data dir): it then neither votes nor stands for a lease. Default true, the safe side.
   */
  restarted?: boolean
  /** A request to a peer is given up after this (default: the election timeout). */
  requestTimeoutMs?: number
  tickMs?: number
  log?: Logger
  random?: () => number
}

export interface LeaseServiceComponents {
  mesh: Pick<MeshNode, 'hostId' | 'handle' | 'unhandle' | 'request'>
}

export class LeaseService {
  readonly timing: LeaseTiming
  private table: LeaseTable | undefined
  private timer: ReturnType<typeof setTimeout> | undefined
  /** The next tick is LEASE_IDLE_TICK_MS away: this host takes part in no lease. */
  private idle = false
  private readonly hooks = new KeyedQueue()
  private readonly owned = new Set<string>()
  private readonly requestTimeoutMs: number
  private readonly tickMs: number
  private running = false
  /** Refused renewals and votes this host answered, by reason (for /metrics). */
  readonly refusals = new Map<LeaseRefusal, number>()
  private readonly refusalLog = new RateLimitedLog(REFUSAL_LOG_EVERY_MS)

  constructor (private readonly components: LeaseServiceComponents, private readonly init: LeaseServiceInit) {
    this.timing = leaseTiming(init.timing)
    this.requestTimeoutMs = init.requestTimeoutMs ?? this.timing.electionTimeoutMs
    this.tickMs = init.tickMs ?? Math.min(LEASE_TICK_MS, Math.floor(this.timing.renewEveryMs / 5))
  }

  async start (): Promise<void> {
    if (this.running) return
    const persisted = await this.init.hooks.loadLeases()
    const restarted = this.init.restarted ?? true
    this.table = new LeaseTable({
      selfId: this.components.mesh.hostId, timing: this.timing, now: now(), persisted, restarted, random: this.init.random ?? Math.random,
      position: (vmId) => this.init.hooks.replicaPosition(vmId),
      ...(this.init.hooks.vouches !== undefined ? { vouch: (vmId: string, from: string) => this.init.hooks.vouches?.(vmId, from) ?? false } : {})
    })
    this.running = true
    await this.components.mesh.handle(LEASE_PROTOCOL, async (bytes, peer) => await this.answer(bytes, peer), { timeoutMs: this.requestTimeoutMs * 2 })
    if (restarted) for (const p of persisted) this.emit({ type: 'restarted', vmId: p.vmId, epoch: p.epoch, at: now(), detail: `quiet for ${this.timing.restartQuietMs} ms: grants made before the restart are forgotten` })
    this.tick()
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    clearTimeout(this.timer)
    await this.components.mesh.unhandle(LEASE_PROTOCOL).catch(() => {})
    await this.hooks.idle()
  }

  /** A VM's lease as this host sees it (instants in Unix ms), for `vm show`. */
  state (vmId: string): LeaseState | undefined {
    return this.table?.state(vmId)
  }

  states (): LeaseState[] {
    const t = this.table
    return t === undefined ? [] : t.vmIds().map((id) => t.state(id)).filter((s): s is LeaseState => s !== undefined)
  }

  /**
   * A live migration hands `vmId` to host `to` at epoch + 1 (call it before the destination takes
   * over): the members hear it in a renewal at once, and take `to`'s renewals although it is not in
   * their group. Fire and forget: a member that misses it takes `to` once its grant here lapses.
   */
  handOver (vmId: string, to: string): void {
    if (this.table === undefined || !this.running) return
    void this.run(this.table.handOver(vmId, to, now()))
    this.wake()
  }

  /** The agent learnt (gossip) that `owner` runs the VM at `epoch`: an older owner here steps down. */
  observe (vmId: string, epoch: number, owner: string): void {
    if (this.table === undefined || owner === this.components.mesh.hostId) return
    const out = this.table.handle(owner, { type: 'refused', vmId, epoch: 0, round: 0, reason: 'stale-epoch', knownEpoch: epoch, owner, elected: true }, now())
    void this.run(out.effects)
    this.wake()
  }

  private tick (): void {
    const table = this.table
    if (!this.running || table === undefined) return
    try {
      this.runTable(table)
    } finally {
      this.schedule(table.empty && this.owned.size === 0)
    }
  }

  private runTable (table: LeaseTable): void {
    const effects: LeaseEffect[] = []
    const t = now()
    let groups: OwnedGroup[] = []
    try { groups = this.init.hooks.ownedGroups() } catch (err) { this.init.log?.error('ownedGroups failed', { err: String(err) }) }
    const listed = new Set<string>()
    for (const g of groups) {
      listed.add(g.vmId)
      if (this.hooks.busy(g.vmId)) continue
      this.owned.add(g.vmId)
      effects.push(...table.own(g, t))
    }
    for (const vmId of this.owned) {
      if (listed.has(vmId) || this.hooks.busy(vmId)) continue
      this.owned.delete(vmId)
      table.disown(vmId)
    }
    effects.push(...table.tick(t))
    void this.run(effects)
  }

  private schedule (idle: boolean): void {
    clearTimeout(this.timer)
    this.idle = idle
    this.timer = setTimeout(() => { this.tick() }, idle ? LEASE_IDLE_TICK_MS : this.tickMs)
  }

  /** Back to the full rate at once: a peer's request or a hand-over may just have started a lease here. */
  private wake (): void {
    if (this.idle && this.running) this.schedule(false)
  }

  /** Serves one inbound batch: every answer's persists are written before the response leaves. */
  private async answer (bytes: Uint8Array, peer: string): Promise<Uint8Array> {
    const table = this.table
    if (!this.running || table === undefined) return encodeLeaseError('UNAVAILABLE', 'the lease service is stopping')
    let requests: LeaseRequestMessage[]
    try { requests = decodeLeaseRequest(bytes) } catch (err) { return encodeLeaseError('INVALID_ARGUMENT', (err as Error).message) }
    const answers: LeaseAnswerMessage[] = []
    const effects: LeaseEffect[] = []
    for (const m of requests) {
      const out = table.handle(peer, m, now())
      const reply = out.reply ?? { type: 'refused', vmId: m.vmId, epoch: m.epoch, round: m.round, reason: 'invalid', knownEpoch: 0, owner: '', elected: false }
      answers.push(reply)
      effects.push(...out.effects)
      const refusal = reply.type === 'refused' ? reply.reason : reply.type === 'vote' && !reply.granted ? reply.reason : undefined
      if (refusal !== undefined) this.refused(refusal, m, peer)
    }
    this.wake()
    if (!await this.run(effects)) return encodeLeaseError('UNAVAILABLE', 'could not persist the lease state')
    return encodeLeaseResponse(answers)
  }

  /** Carries out effects: persists first (awaited), then requests (batched per peer), hooks, events. */
  private async run (effects: LeaseEffect[]): Promise<boolean> {
    if (effects.length === 0) return true
    for (const e of effects) {
      if (e.type !== 'persist') continue
      try {
        await this.init.hooks.saveLease(e.state)
      } catch (err) {
        this.init.log?.error('saving a lease record failed: nothing that depends on it is sent', { vm: e.state.vmId, err: String(err) })
        return false
      }
    }
    const batches = new Map<string, LeaseRequestMessage[]>()
    for (const e of effects) {
      switch (e.type) {
        case 'send': batches.set(e.to, [...(batches.get(e.to) ?? []), e.message]); break
        case 'fence': this.hook(e.vmId, 'fence', async () => { await this.init.hooks.fence(e.vmId, e.reason) }); break
        case 'resume': this.hook(e.vmId, 'resume', async () => { await this.init.hooks.resume(e.vmId) }); break
        case 'promote': this.hook(e.vmId, 'promote', async () => { await this.init.hooks.promote(e.vmId, e.epoch) }); break
        case 'demote': this.owned.delete(e.vmId); this.hook(e.vmId, 'demote', async () => { await this.init.hooks.demote(e.vmId, e.epoch, e.owner) }); break
        case 'event': this.emit(e.event); break
        case 'renewed': this.renewed(e.vmId, e.epoch, e.fenceAt); break
        case 'persist': break
      }
    }
    for (const [peer, messages] of batches) void this.send(peer, messages)
    return true
  }

  private async send (peer: string, messages: LeaseRequestMessage[]): Promise<void> {
    let answers: LeaseAnswerMessage[]
    try {
      answers = decodeLeaseResponse(await this.components.mesh.request(peer, LEASE_PROTOCOL, encodeLeaseRequest(messages), { timeoutMs: this.requestTimeoutMs }))
    } catch (err) {
      // Unreachable or refusing peers are the protocol's normal weather: the table times out on its own.
      this.init.log?.debug('lease request failed', { peer, messages: messages.length, err: err instanceof LeaseProtocolError ? err.message : String(err) })
      return
    }
    const table = this.table
    if (!this.running || table === undefined) return
    const effects: LeaseEffect[] = []
    for (const a of answers) effects.push(...table.handle(peer, a, now()).effects)
    await this.run(effects)
  }

  private hook (vmId: string, what: string, fn: () => Promise<void>): void {
    void this.hooks.run(vmId, fn, (err) => { this.init.log?.error(`lease hook ${what} failed`, { vm: vmId, err: String(err) }) })
  }

  private renewed (vmId: string, epoch: number, fenceAt: number): void {
    try { this.init.hooks.renewed?.(vmId, epoch, Math.floor(Date.now() + (fenceAt - now()))) } catch (err) { this.init.log?.error('lease renewed hook failed', { vm: vmId, err: String(err) }) }
  }

  /** Counts a refusal; the ones that point at a misbehaving peer are logged, at a bounded rate. */
  private refused (reason: LeaseRefusal, m: LeaseRequestMessage, peer: string): void {
    this.refusals.set(reason, (this.refusals.get(reason) ?? 0) + 1)
    if (reason !== 'not-member' && reason !== 'unknown-vm' && reason !== 'invalid') return
    this.refusalLog.log(reason, (suppressed) => {
      this.init.log?.warn(`lease ${m.type} refused: ${reason}`, { vm: m.vmId, epoch: m.epoch, peer, ...(suppressed > 0 ? { suppressed } : {}) })
    })
  }

  private emit (e: LeaseEvent): void {
    this.init.log?.info(`lease ${e.type}`, { vm: e.vmId, epoch: e.epoch, ...(e.detail !== undefined ? { detail: e.detail } : {}) })
    try { this.init.hooks.event({ ...e, at: Math.round(e.at) }) } catch (err) { this.init.log?.error('lease event hook failed', { err: String(err) }) }
  }
}

function now (): number {
  return performance.timeOrigin + performance.now()
}
