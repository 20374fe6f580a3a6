import type { Hypervisor } from '@meshvirt/hypervisor'
import type { ClusterView } from '@meshvirt/mesh'
import type { meshvirt } from '@meshvirt/proto'
import type { FenceWatchdog } from '../fence/fence-watchdog.js'
import type { OwnedGroup } from '../lease/lease-table.js'
import type { LeaseHooks, LeaseService } from '../lease/lease-service.js'
import type { LeaseEvent, LeasePosition, PersistedLease } from '../lease/types.js'
import type { Logger } from '../log/logger.js'
import type { EventKind } from '../monitor/cluster-event.js'
import type { ReplicaKeeper } from '../replication/replica-keeper.js'
import type { LeaseRecords } from '../store/lease-records.js'
import type { ReplicaRecords } from '../store/replica-records.js'
import type { VmRow } from '../store/state-store.js'
import type { VmManager } from '../vm/vm-manager.js'
import { chooseWitness } from './witness.js'

export interface AgentLeaseDeps {
  selfId: string
  vms: VmManager
  records: ReplicaRecords
  keeper: ReplicaKeeper
  leases: LeaseRecords
  view: ClusterView
  hypervisor: Hypervisor
  watchdog: FenceWatchdog
  log: Logger
  /** A cluster event about a VM (monitoring's signed events); absent in bare set-ups. */
  emit?: (draft: { kind: EventKind, vmId: string, vmName: string, vmEpoch: number, message: string }) => void
}

/** Groups are recomputed at most this often (the lease ticks every 50 ms). */
const GROUPS_TTL_MS = 200
/** Held replicas (for vouching) are re-read from the store at most this often. */
const HELD_TTL_MS = 200
/** How often the watchdog's deadlines follow the lease. */
const ARM_EVERY_MS = 100
/** How often when this host leads no replicated VM and nothing is armed (a renewal arms at once). */
const ARM_IDLE_MS = 1000
/**
 * The watchdog fires this long after the agent's own fence instant: a live agent fences first (and
 * records why); a dead or stalled one is still fenced well within the lease's maxFenceMs (400 ms).
 */
export const WATCHDOG_GRACE_MS = 150
/** Taken off a lease handed over by a migration: the hand-over message's transit, and then some. */
const HANDOVER_MARGIN_MS = 250

const CLUSTER_EVENT: Partial<Record<LeaseEvent['type'], EventKind>> = {
  'lease-lost': 'vm-lease-lost',
  fenced: 'vm-fenced',
  resumed: 'vm-lease-resumed',
  elected: 'vm-elected',
  promoted: 'vm-failed-over',
  demoted: 'vm-demoted'
}

/**
 * The agent's side of the lease protocol (LeaseHooks): which replicated VMs this host leads and
 * with whom (holders + a witness when the group is even), its replica positions, and what fence,
 * resume, promote and demote mean here — the VM manager stops or starts the guest, the replica
 * keeper turns a replica into the VM or the VM back into a replica. It also keeps the fence
 * watchdog's deadline on the lease (so a dead agent's guest still stops in time), tells the lease
 * of newer owners it hears of through gossip, and records each VM's lease history for `vm show`.
 */
export class AgentLease implements LeaseHooks {
  private groups: { at: number, list: OwnedGroup[] } = { at: 0, list: [] }
  private held: { at: number, owners: Map<string, string> } = { at: 0, owners: new Map() }
  private readonly witnesses = new Map<string, string>()
  private readonly armed = new Map<string, number>()
  /** Fence instants proven by the previous agent for guests it left running (from the watchdog's files). */
  private readonly inherited = new Map<string, number>()
  /** QEMU pid of each armed guest (a restarted guest is disarmed first, so the cache never goes stale). */
  private readonly pids = new Map<string, number>()
  private service: LeaseService | undefined
  private armTimer: NodeJS.Timeout | undefined
  /** Not derivable from armTimer: an arm already running when detach() clears it would schedule the next. */
  private detached = false
  private unsubscribe: (() => void) | undefined

  constructor (private readonly deps: AgentLeaseDeps) {}

  /** Starts following the lease: the watchdog's deadlines, gossip of newer owners, fences done while away. */
  async attach (service: LeaseService): Promise<void> {
    this.service = service
    // Guests the previous agent left running inside a proven lease may run on until its fence instant.
    for (const a of await this.deps.watchdog.armed()) {
      if (a.fenceAt - WATCHDOG_GRACE_MS > Date.now()) this.inherited.set(a.vmId, a.fenceAt - WATCHDOG_GRACE_MS)
    }
    for (const f of await this.deps.watchdog.fired()) {
      this.record(f.vmId, { type: 'fenced', atMs: f.at, epoch: this.deps.vms.get(f.vmId)?.epoch ?? 0, detail: `by the fence watchdog while the agent was away (guest pid ${f.pid}${f.killed ? ' killed' : ' already gone'})` })
    }
    this.scheduleArm(ARM_EVERY_MS)
    this.unsubscribe = this.deps.view.subscribe((e) => {
      if (e.type === 'removed' || e.host.self) return
      for (const v of e.host.advert.vms) {
        if (v.role !== 'owner') continue
        const mine = this.deps.vms.get(v.id)
        if (mine !== undefined && v.epoch > mine.epoch) this.service?.observe(v.id, v.epoch, e.host.hostId)
      }
    })
  }

  async detach (): Promise<void> {
    this.detached = true
    clearTimeout(this.armTimer)
    this.unsubscribe?.()
  }

  // --- LeaseHooks ---------------------------------------------------------------------------

  ownedGroups (): OwnedGroup[] {
    const now = Date.now()
    if (now - this.groups.at < GROUPS_TTL_MS) return this.groups.list
    const list: OwnedGroup[] = []
    for (const vm of this.deps.vms.list()) {
      if (vm.desired === 'deleted' || vm.state === 'deleting' || vm.state === 'incoming') continue
      const spec = vm.spec
      const holders = this.deps.records.holders(vm.id).map((h) => h.holder)
      if (spec.replicas === 0 && holders.length === 0) continue
      const witness = this.witnessFor(vm, spec.spreadBy, holders)
      const inherited = this.inherited.get(vm.id)
      if (inherited !== undefined && inherited <= now) this.inherited.delete(vm.id)
      list.push({
        vmId: vm.id, epoch: vm.epoch, members: witness === undefined ? holders : [...holders, witness], guest: guestOf(vm),
        ...(inherited !== undefined && inherited > now && vm.state === 'running' ? { provenFenceAt: inherited } : {})
      })
    }
    this.groups = { at: now, list }
    return list
  }

  replicaPosition (vmId: string): LeasePosition | undefined {
    return this.deps.keeper.positionNow(vmId)
  }

  async fence (vmId: string, reason: string): Promise<void> {
    await this.deps.vms.fence(vmId, reason)
    await this.disarm(vmId)
    this.invalidate()
  }

  async resume (vmId: string): Promise<void> {
    await this.deps.vms.resume(vmId)
    this.invalidate()
  }

  async promote (vmId: string, epoch: number): Promise<void> {
    await this.deps.keeper.promote(vmId, { kind: 'lease', epoch })
    this.invalidate()
  }

  async demote (vmId: string, epoch: number, owner: string | undefined): Promise<void> {
    await this.disarm(vmId)
    const row = await this.deps.vms.relinquish(vmId)
    if (row !== undefined) this.deps.keeper.holdAfterDemotion(row, epoch, owner ?? '')
    this.invalidate()
  }

  /** A renewal moved the fence instant: move the watchdog's deadline with it, now. */
  renewed (vmId: string, _epoch: number, fenceAt: number): void {
    if (Math.abs((this.armed.get(vmId) ?? 0) - fenceAt) < 20) return
    void this.armOne(vmId, fenceAt).catch((err: unknown) => { this.deps.log.warn('could not arm the fence watchdog', { vm: vmId, err: (err as Error).message }) })
  }

  /**
   * Lease state for a VM this host knows nothing of yet is started only by its owner: the host this
   * one holds a replica from, or one whose signed advert lists the VM as its own (a witness learns
   * its group that way). Anything else would let any cluster host fill the store (issue 22).
   */
  vouches (vmId: string, from: string): boolean {
    if (this.deps.view.get(from)?.advert.vms.some((v) => v.id === vmId && v.role === 'owner') === true) return true
    // The held replicas from the store at most every HELD_TTL_MS, not once per renewal: a flood of
    // renewals for unknown VMs must not become a flood of queries.
    const now = Date.now()
    if (!this.held.owners.has(vmId) && now - this.held.at >= HELD_TTL_MS) {
      this.held = { at: now, owners: new Map(this.deps.records.listHeld().map((h) => [h.vmId, h.owner])) }
    }
    return this.held.owners.get(vmId) === from
  }

  loadLeases (): PersistedLease[] {
    return this.deps.leases.load()
  }

  async saveLease (state: PersistedLease): Promise<void> {
    this.deps.leases.save(state)
  }

  event (e: LeaseEvent): void {
    this.record(e.vmId, { type: e.type, atMs: Math.round(e.at), epoch: e.epoch, detail: e.detail ?? '' })
    const vm = this.deps.vms.get(e.vmId)
    const name = vm?.name ?? this.deps.records.held(e.vmId)?.name ?? ''
    const fields = { vm: e.vmId, name, epoch: e.epoch, detail: e.detail }
    if (e.type === 'fenced' || e.type === 'lease-lost' || e.type === 'demoted') this.deps.log.warn(`lease: ${e.type}`, fields)
    else this.deps.log.info(`lease: ${e.type}`, fields)
    const kind = CLUSTER_EVENT[e.type]
    if (kind !== undefined) this.deps.emit?.({ kind, vmId: e.vmId, vmName: name, vmEpoch: e.epoch, message: e.detail ?? e.type })
  }

  /**
   * A VM handed over by a live migration, with `remainingMs` of the source's lease left: its guest
   * (running since the hand-over) may run that long here — less a margin for the message's transit —
   * while this host's first renewals at the new epoch are proven, instead of being fenced at once.
   */
  inheritLease (vmId: string, remainingMs: number): void {
    if (remainingMs <= HANDOVER_MARGIN_MS) return
    this.inherited.set(vmId, Date.now() + remainingMs - HANDOVER_MARGIN_MS)
    this.invalidate()
  }

  // --- for vm show ------------------------------------------------------------------------------

  infoOf (vm: VmRow): Partial<meshvirt.v1.IVmInfo> {
    const state = this.service?.state(vm.id)
    const history = this.deps.leases.history(vm.id)
    if (state === undefined && history.length === 0) return {}
    return {
      ...(state !== undefined
        ? {
            lease: {
              role: state.role,
              epoch: state.epoch,
              owner: state.owner,
              members: state.members,
              witness: this.witnesses.get(vm.id) ?? '',
              running: state.running ?? false,
              expiresAtMs: Math.round(state.expiresAt ?? 0),
              fenceAtMs: Math.round(state.fenceAt ?? 0)
            }
          }
        : {}),
      leaseHistory: history
    }
  }

  // --- internals --------------------------------------------------------------------------------

  private witnessFor (vm: VmRow, spreadBy: string, holders: string[]): string | undefined {
    const domainOf = (id: string): string | undefined => spreadBy === '' ? undefined : this.deps.view.get(id)?.advert.labels[spreadBy]
    const current = this.witnesses.get(vm.id)
    const alive = (id: string): boolean => { const h = this.deps.view.get(id); return h !== undefined && h.liveness !== 'dead' }
    // Keep a witness while it lives and is still needed (a change of group costs a round of renewals).
    if (current !== undefined && (1 + holders.length) % 2 === 0 && !holders.includes(current) && alive(current)) return current
    const chosen = chooseWitness({
      vmId: vm.id,
      owner: this.deps.selfId,
      holders,
      hosts: this.deps.view.hosts().filter((h) => !h.self).map((h) => ({ id: h.hostId, alive: h.liveness === 'alive', domain: domainOf(h.hostId) })),
      takenDomains: [this.deps.selfId, ...holders].map(domainOf).filter((d): d is string => d !== undefined)
    })
    if (chosen === undefined) this.witnesses.delete(vm.id)
    else this.witnesses.set(vm.id, chosen)
    return chosen
  }

  private scheduleArm (ms: number): void {
    this.armTimer = setTimeout(() => {
      void this.arm()
        .catch((err: unknown) => { this.deps.log.warn('could not arm the fence watchdog', { err: (err as Error).message }) })
        // arm() has just read ownedGroups(), so the cached list is current: nothing armed or owned sleeps longer.
        .finally(() => { if (!this.detached) this.scheduleArm(this.armed.size === 0 && this.groups.list.length === 0 ? ARM_IDLE_MS : ARM_EVERY_MS) })
    }, ms)
    this.armTimer.unref()
  }

  /** The watchdog's deadline of every running guest this host leads follows the lease's fence instant. */
  private async arm (): Promise<void> {
    const service = this.service
    if (service === undefined) return
    const leading = new Set<string>()
    for (const g of this.ownedGroups()) {
      const state = service.state(g.vmId)
      if (g.guest !== 'running' || state?.role !== 'owner' || state.running !== true || state.fenceAt === undefined) continue
      leading.add(g.vmId)
      const fenceAt = Math.round(state.fenceAt)
      if (Math.abs((this.armed.get(g.vmId) ?? 0) - fenceAt) >= 20) await this.armOne(g.vmId, fenceAt)
    }
    for (const vmId of this.armed.keys()) if (!leading.has(vmId)) await this.disarm(vmId)
  }

  private async armOne (vmId: string, fenceAt: number): Promise<void> {
    let pid = this.pids.get(vmId)
    if (pid === undefined) {
      pid = (await this.deps.hypervisor.inspect(vmId).catch(() => undefined))?.pid
      if (pid === undefined) return
      this.pids.set(vmId, pid)
    }
    await this.deps.watchdog.arm(vmId, pid, fenceAt + WATCHDOG_GRACE_MS)
    this.armed.set(vmId, fenceAt)
  }

  private async disarm (vmId: string): Promise<void> {
    this.armed.delete(vmId)
    this.pids.delete(vmId)
    await this.deps.watchdog.disarm(vmId)
  }

  private record (vmId: string, entry: meshvirt.v1.ILeaseHistoryEntry): void {
    try {
      this.deps.leases.appendHistory(vmId, { ...entry, hostId: this.deps.selfId })
    } catch (err) {
      this.deps.log.warn('could not record lease history', { vm: vmId, type: entry.type, err: (err as Error).message })
    }
  }

  private invalidate (): void {
    this.groups = { at: 0, list: [] }
  }
}

function guestOf (vm: VmRow): OwnedGroup['guest'] {
  switch (vm.state) {
    case 'running': case 'starting': case 'pending': case 'migrating': return 'running'
    case 'fenced': return 'down'
    default: return 'stopped'
  }
}
