import type { ClusterView, ClusterViewEvent, HostEntry } from '@meshvirt/mesh'
import { pb, type meshvirt } from '@meshvirt/proto'
import { Gauge, type Registry } from 'prom-client'
import type { Logger } from '../log/logger.js'
import type { SnapshotVm } from '../monitor/cluster-snapshot.js'
import { claimHolders } from '../negotiate/name-authority.js'
import type { PeerClient } from '../negotiate/peer-client.js'
import type { VmRow } from '../store/state-store.js'
import type { KnownVm, VmRecordStore, VmTombstone } from '../store/vm-record-store.js'
import { condemns, MAX_TOMBSTONES, mergeTombstones, reconcileAdvert, TOMBSTONE_TTL_MS, unknownVms, type UnknownVm } from './known-vms.js'

/** A tombstone exchange with one peer (a small message; the peer may be busy). */
export const TOMBSTONE_SYNC_TIMEOUT_MS = 5_000
/** How long a VM found down at recovery waits for a peer's tombstones before it is started anyway (a lone host has nobody to ask). */
export const RECOVERY_SYNC_WAIT_MS = 10_000
/** Tries of a tombstone pull from a host that joined, the first retry after PULL_RETRY_MS, then doubling. */
const PULL_ATTEMPTS = 4
const PULL_RETRY_MS = 500

export interface VmRecordsDeps {
  selfId: string
  store: VmRecordStore
  view: ClusterView
  peers: Pick<PeerClient, 'control' | 'negotiate'>
  vms: { get: (id: string) => VmRow | undefined, delete: (id: string) => Promise<void>, relinquish: (id: string) => Promise<unknown> }
  /** Frees a name claim this host holds as the name's authority, if it is the VM's. */
  releaseName: (name: string, vmId: string) => void
  /** After a force delete: what other parts free cluster-wide for the VM (its NICs' addresses). */
  onForceDeleted?: (vmId: string) => Promise<void>
  /** This agent was told peers to join (bootstrap addresses): a VM found down at recovery waits to hear one. */
  expectPeers: boolean
  log: Logger
  clock?: () => number
}

/**
 * "A VM never vanishes": every host records what the others gossip about the VMs they own (in its
 * store, so it survives this agent's restart), lists the VMs whose owner is dead, gone or silent as
 * unknown, and lets the operator `vm delete --force` them. A force delete leaves a tombstone that
 * every host keeps (bounded, expiring), pushed at once to the live hosts and pulled from each host
 * that joins or comes back; an owner that returns with a tombstoned VM deletes its copy and, when
 * the guest was down, never starts it (`recoveryGate`).
 */
export class VmRecords {
  private readonly known = new Map<string, KnownVm>()
  private readonly tombs = new Map<string, VmTombstone>()
  private readonly clock: () => number
  private unsubscribe: (() => void) | undefined
  private stopped = false
  private readonly obeying = new Set<string>()
  /** VMs another live host also owns, being resolved (one of the two copies gives way). */
  private readonly resolving = new Set<string>()
  private synced!: () => void
  /** Resolves once one peer's tombstones were heard (or the recovery wait is over). */
  private readonly firstSync = new Promise<void>((resolve) => { this.synced = resolve })

  constructor (private readonly deps: VmRecordsDeps) {
    this.clock = deps.clock ?? Date.now
    for (const k of deps.store.listKnown()) this.known.set(k.id, k)
    this.keepTombstones(deps.store.tombstones())
  }

  /** Starts following the view: every advert updates the records; every host that joins or returns swaps tombstones with this one. */
  start (): void {
    for (const h of this.deps.view.hosts()) this.reconcile(h)
    for (const h of this.deps.view.hosts()) if (!h.self && h.liveness !== 'dead') void this.pull(h.hostId)
    this.unsubscribe = this.deps.view.subscribe((e) => { this.onView(e) })
  }

  stop (): void {
    this.stopped = true
    this.unsubscribe?.()
    this.synced()
  }

  /**
   * VMs to add to a cluster-wide listing (the VMs the live hosts listed) as unknown: those whose
   * owner is dead, gone (removed from the view) or suspect. An alive owner is taken to have
   * answered: a VM it did not list is stale (its next advert drops the record).
   */
  unknownInfos (listedVms: readonly meshvirt.v1.IVmInfo[]): meshvirt.v1.IVmInfo[] {
    const listed = new Set(listedVms.map((v) => v.summary?.id ?? ''))
    return unknownVms([...this.known.values()], listed, (id) => this.ownerFacts(id, this.deps.view.get(id)?.liveness === 'alive'), this.deps.selfId, (id) => this.tombs.has(id)).map(toInfo)
  }

  /** For the dashboard (gossip only, no fan-out): the VMs whose owner is dead or gone. */
  snapshotVms (): SnapshotVm[] {
    return unknownVms([...this.known.values()], new Set(), (id) => this.ownerFacts(id, true), this.deps.selfId, (id) => this.tombs.has(id))
      .filter((u) => u.ownerLiveness === 'dead' || u.ownerLiveness === 'gone')
      .map((u) => ({
        id: u.vm.id, name: u.vm.name, state: 'unknown', owner: u.vm.owner, ownerName: u.vm.ownerHostname !== '' ? u.vm.ownerHostname : u.vm.owner.slice(-12),
        epoch: u.vm.epoch, vcpus: u.vm.resources.vcpus, memoryBytes: u.vm.resources.memoryBytes, replicas: [], ownerLiveness: u.ownerLiveness, unknownSinceMs: u.sinceMs
      }))
  }

  /** The unknown VM a reference names, for `vm show` when no live host has it. */
  findUnknown (ref: meshvirt.v1.IVmRef): meshvirt.v1.IVmInfo | undefined {
    const u = this.unknownMatching(ref)
    return u === undefined ? undefined : toInfo(u)
  }

  /**
   * `vm delete --force`: the owner deletes it when it answers (`deleteNormally`); otherwise, for a
   * VM known here whose owner is dead, gone or silent, a tombstone is recorded and spread, and the
   * name is freed at its authorities.
   */
  async forceDelete (ref: meshvirt.v1.IVmRef, deleteNormally: () => Promise<meshvirt.v1.IControlResponse>): Promise<meshvirt.v1.IControlResponse> {
    try {
      return await deleteNormally()
    } catch (err) {
      const code = (err as { code?: string }).code ?? ''
      if (!['NOT_FOUND', 'UNAVAILABLE', 'TIMEOUT'].includes(code)) throw err
      const u = this.unknownMatching(ref)
      if (u === undefined) throw err
      return await this.tombstone(u)
    }
  }

  /** Control body `syncTombstones` (host to host): keep the sender's, obey them, answer with all kept here. */
  async handleSync (req: meshvirt.v1.ControlRequest): Promise<meshvirt.v1.IControlResponse> {
    await this.learn((req.syncTombstones?.add ?? []).map(fromWire))
    return { tombstoneList: { tombstones: [...this.tombs.values()].map(toWire) } }
  }

  /**
   * Whether a VM found down at recovery may be started: once one peer's tombstones are heard (at
   * most RECOVERY_SYNC_WAIT_MS), a tombstoned VM is deleted here instead.
   */
  async recoveryGate (vm: VmRow): Promise<boolean> {
    return await this.mayStart(vm, 'ask every live host')
  }

  /**
   * Whether a guest that exited while this agent ran may start again: as recoveryGate, but a twin
   * is looked for in gossip only. This host never left the mesh, so a copy committed elsewhere is in
   * that host's adverts (and checkTwin resolves it); asking every live host on each crash would be
   * N requests, and under load it held a restart up by a peer's slowest answer.
   */
  async restartGate (vm: VmRow): Promise<boolean> {
    return await this.mayStart(vm, 'gossip only')
  }

  private async mayStart (vm: VmRow, twins: 'ask every live host' | 'gossip only'): Promise<boolean> {
    // A host that was never in a cluster with others (no bootstrap, nothing heard) has nobody to ask.
    if (this.deps.expectPeers || this.known.size > 0 || this.tombs.size > 0) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([this.firstSync, new Promise<void>((resolve) => { timer = setTimeout(resolve, RECOVERY_SYNC_WAIT_MS) })])
      clearTimeout(timer)
    }
    const t = this.tombs.get(vm.id)
    if (t !== undefined && condemns(t, vm)) {
      await this.obey(t)
      return false
    }
    // Exactly once (issue 22, finding 1): this host may have committed the VM and died before the
    // broker heard, and a retry of the same request placed it on a live host. That copy is the one
    // the client was told of; this one gives way (guest and disk; the name stays the other's).
    const elsewhere = await this.ownedElsewhere(vm, twins === 'ask every live host')
    if (elsewhere === undefined) return true
    this.deps.log.warn('giving up a VM found at recovery: a live host owns it (a retry placed it there while this host was down)', { vm: vm.id, name: vm.name, owner: elsewhere, epoch: vm.epoch })
    await this.deps.vms.relinquish(vm.id).catch((err: unknown) => {
      this.deps.log.error('could not give up a VM another host owns', { vm: vm.id, err: (err as Error).message })
    })
    return false
  }

  /**
   * Another live host owns a VM this host owns too, at the same epoch: a create whose commit answer
   * was lost, retried onto that host while this one was restarting. Exactly one copy stays: the one
   * committed last (the one the client was told of); both hosts apply the same rule, ties by host id.
   */
  private checkTwin (other: string, vmId: string, epoch: number): void {
    const mine = this.deps.vms.get(vmId)
    if (mine === undefined || mine.epoch !== epoch || mine.state === 'incoming' || this.stopped) return
    this.resolving.add(vmId)
    void (async () => {
      const res = await this.deps.peers.control(other, { hops: 1, inspectVm: { vm: { id: vmId } } }, TOMBSTONE_SYNC_TIMEOUT_MS).catch(() => undefined)
      const theirs = res?.vm
      if (theirs?.summary?.owner !== other || (theirs.summary.epoch ?? 0) !== mine.epoch) return
      const theirCreated = Number(theirs.createdAtMs ?? 0)
      const yieldHere = theirCreated > mine.createdAt || (theirCreated === mine.createdAt && other > this.deps.selfId)
      if (!yieldHere) return
      this.deps.log.warn('giving up a VM another live host also owns: its copy was committed later, by a retry of the same request', { vm: vmId, name: mine.name, owner: other, epoch })
      await this.deps.vms.relinquish(vmId)
    })().catch((err: unknown) => {
      this.deps.log.error('could not resolve a VM two hosts own', { vm: vmId, err: (err as Error).message })
    }).finally(() => { this.resolving.delete(vmId) })
  }

  /** A live host that owns this VM at the same or a higher epoch: its advert says so, or it answers so. */
  private async ownedElsewhere (vm: VmRow, ask: boolean): Promise<string | undefined> {
    const others = this.deps.view.hosts().filter((h) => !h.self && h.liveness !== 'dead')
    const gossiped = others.find((h) => h.advert.vms.some((v) => v.id === vm.id && v.role === 'owner' && v.epoch >= vm.epoch))
    if (gossiped !== undefined || !ask) return gossiped?.hostId
    const answers = await Promise.all(others.map(async (h) => {
      const res = await this.deps.peers.control(h.hostId, { hops: 1, inspectVm: { vm: { id: vm.id } } }, TOMBSTONE_SYNC_TIMEOUT_MS).catch(() => undefined)
      const s = res?.vm?.summary
      return s != null && s.owner === h.hostId && (s.epoch ?? 0) >= vm.epoch ? h.hostId : undefined
    }))
    return answers.find((a) => a !== undefined)
  }

  /** `meshvirt_vms_unknown`: VMs this host knows of whose owner is dead or gone (no fan-out at scrape time). */
  registerMetrics (registry: Registry): void {
    const count = (): Map<string, number> => {
      const n = new Map([['dead', 0], ['gone', 0]])
      for (const u of unknownVms([...this.known.values()], new Set(), (id) => this.ownerFacts(id, true), this.deps.selfId, (id) => this.tombs.has(id))) {
        n.set(u.ownerLiveness, (n.get(u.ownerLiveness) ?? 0) + 1)
      }
      return n
    }
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'meshvirt_vms_unknown',
      help: 'VMs this host heard of whose owner is dead or gone (listed as unknown until the owner returns or vm delete --force), by owner_liveness; every host counts them',
      labelNames: ['owner_liveness'],
      registers: [registry],
      collect () {
        this.reset()
        for (const [liveness, n] of count()) this.set({ owner_liveness: liveness }, n)
      }
    })
  }

  private onView (e: ClusterViewEvent): void {
    if (e.type === 'joined' || e.type === 'updated' || e.type === 'alive') this.reconcile(e.host)
    if (!e.host.self && (e.type === 'joined' || e.type === 'alive')) void this.pull(e.host.hostId)
  }

  private reconcile (h: HostEntry): void {
    if (h.self) return
    if (h.liveness !== 'dead') for (const v of h.advert.vms) if (v.role === 'owner' && v.state !== 'migrating' && !this.resolving.has(v.id)) this.checkTwin(h.hostId, v.id, v.epoch)
    const { put, drop } = reconcileAdvert({ hostId: h.hostId, hostname: h.advert.hostname, vms: h.advert.vms }, this.known, (id) => this.tombs.has(id), this.clock())
    if (put.length === 0 && drop.length === 0) return
    this.deps.store.transactionally(() => {
      for (const k of put) { this.deps.store.putKnown(k); this.known.set(k.id, k) }
      for (const id of drop) { this.deps.store.deleteKnown(id); this.known.delete(id) }
    })
  }

  private ownerFacts (hostId: string, answered: boolean | undefined): { liveness: string | undefined, sinceMs: number, answered: boolean | undefined } {
    const h = this.deps.view.get(hostId)
    return { liveness: h?.liveness, sinceMs: h?.livenessSinceMs ?? 0, answered }
  }

  private unknownMatching (ref: meshvirt.v1.IVmRef): UnknownVm | undefined {
    const byId = (ref.id ?? '') !== ''
    const candidates = [...this.known.values()].filter((k) => byId ? k.id === ref.id : k.name === ref.name)
    // The caller found no live host with it: a live owner here means it did not answer.
    return unknownVms(candidates, new Set(), (id) => this.ownerFacts(id, false), this.deps.selfId, (id) => this.tombs.has(id))[0]
  }

  private async tombstone (u: UnknownVm): Promise<meshvirt.v1.IControlResponse> {
    const { vm } = u
    const t: VmTombstone = { vmId: vm.id, name: vm.name, owner: vm.owner, epoch: vm.epoch, deletedAt: this.clock() }
    this.deps.store.putTombstone(t)
    this.tombs.set(t.vmId, t)
    this.known.delete(t.vmId)
    this.deps.log.warn('vm deleted by force: its owner is not there to do it; a returning owner will delete its copy', { vm: vm.id, name: vm.name, owner: vm.owner, ownerLiveness: u.ownerLiveness })
    const hosts = this.deps.view.hosts().filter((h) => !h.self && h.liveness !== 'dead').map((h) => h.hostId)
    // Free the name where it may be held (the authority, and its successor should membership have moved).
    const authorities = claimHolders(vm.name, this.deps.view)
    await Promise.all([
      ...authorities.map(async (authority) => {
        await this.deps.peers.negotiate(authority, { bindName: { name: vm.name, vmId: vm.id, release: true } }).catch((err: unknown) => {
          this.deps.log.warn('could not release the VM name at an authority', { vm: vm.id, authority, err: (err as Error).message })
        })
      }),
      // A host that just restarted may not answer yet: it is asked again, in the background.
      ...hosts.map(async (host) => { if (!await this.exchange(host, [t])) void this.exchangeRetried(host, [t], 1) }),
      this.deps.onForceDeleted?.(vm.id).catch((err: unknown) => {
        this.deps.log.warn('could not free what a force-deleted VM held', { vm: vm.id, err: (err as Error).message })
      })
    ])
    return { vm: { ...toInfo(u), summary: { ...toInfo(u).summary, state: pb.VmState.VM_STATE_DELETING } } }
  }

  /**
   * Swaps tombstones with a host that joined or came back: its own, and this host's for it. A host
   * that restarted may have been dead here when a tombstone was made (and so not told); it pulled
   * from this host before the tombstone existed. Measured: the vm-records integration case timed
   * out waiting for the restarted host to drop a force-deleted VM (2 CI runs in 17).
   */
  private async pull (host: string): Promise<void> {
    if (await this.exchangeRetried(host, [...this.tombs.values()], 0)) this.synced()
  }

  /**
   * `exchange`, tried up to PULL_ATTEMPTS times from attempt `first` (a host that just joined or
   * restarted may not serve the control protocol yet), the waits doubling from PULL_RETRY_MS.
   */
  private async exchangeRetried (host: string, add: VmTombstone[], first: number): Promise<boolean> {
    for (let attempt = first; attempt < PULL_ATTEMPTS && !this.stopped; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, PULL_RETRY_MS * 2 ** (attempt - 1)).unref())
      if (await this.exchange(host, add)) return true
    }
    return false
  }

  /** Sends `add` to a host and keeps what it answers. Best effort: false when it did not answer. */
  private async exchange (host: string, add: VmTombstone[]): Promise<boolean> {
    try {
      const res = await this.deps.peers.control(host, { hops: 1, syncTombstones: { add: add.map(toWire) } }, TOMBSTONE_SYNC_TIMEOUT_MS)
      await this.learn((res.tombstoneList?.tombstones ?? []).map(fromWire))
      return true
    } catch (err) {
      this.deps.log.debug('tombstone exchange failed', { peer: host, err: (err as Error).message })
      return false
    }
  }

  /** Keeps new tombstones (store first) and deletes this host's copies they condemn. */
  private async learn (heard: VmTombstone[]): Promise<void> {
    const fresh = heard.filter((t) => !this.tombs.has(t.vmId))
    if (fresh.length === 0) return
    const kept = this.keepTombstones([...this.tombs.values(), ...fresh])
    for (const t of fresh) if (kept.has(t.vmId)) this.deps.store.putTombstone(t)
    this.deps.store.pruneTombstones(this.clock() - TOMBSTONE_TTL_MS, MAX_TOMBSTONES)
    for (const t of fresh) {
      this.known.delete(t.vmId)
      if (!kept.has(t.vmId)) continue
      this.deps.releaseName(t.name, t.vmId)
      await this.obey(t)
    }
  }

  private keepTombstones (all: VmTombstone[]): Set<string> {
    const kept = mergeTombstones(all, [], this.clock())
    this.tombs.clear()
    for (const t of kept) this.tombs.set(t.vmId, t)
    return new Set(kept.map((t) => t.vmId))
  }

  private async obey (t: VmTombstone): Promise<void> {
    const vm = this.deps.vms.get(t.vmId)
    if (vm === undefined || !condemns(t, vm) || this.obeying.has(vm.id)) return
    this.obeying.add(vm.id)
    this.deps.log.warn('deleting a VM the cluster deleted by force while this host was away', { vm: vm.id, name: vm.name, deletedAt: t.deletedAt })
    await this.deps.vms.delete(vm.id).catch((err: unknown) => {
      this.deps.log.error('could not delete a tombstoned VM', { vm: vm.id, err: (err as Error).message })
    }).finally(() => { this.obeying.delete(vm.id) })
  }
}

function toInfo (u: UnknownVm): meshvirt.v1.IVmInfo {
  const { vm } = u
  return {
    summary: { id: vm.id, name: vm.name, epoch: vm.epoch, role: pb.VmRole.VM_ROLE_OWNER, state: pb.VmState.VM_STATE_UNKNOWN, resources: vm.resources, owner: vm.owner, group: vm.group },
    unknown: { ownerHostname: vm.ownerHostname, ownerLiveness: u.ownerLiveness, sinceMs: u.sinceMs, lastHeardMs: vm.lastHeardAt, lastState: stateToWire(vm.state) }
  }
}

function stateToWire (state: string): number {
  return (pb.VmState as unknown as Record<string, number>)[`VM_STATE_${state.toUpperCase()}`] ?? pb.VmState.VM_STATE_UNSPECIFIED
}

function toWire (t: VmTombstone): meshvirt.v1.IVmTombstone {
  return { vmId: t.vmId, name: t.name, owner: t.owner, epoch: t.epoch, deletedAtMs: t.deletedAt }
}

function fromWire (t: meshvirt.v1.IVmTombstone): VmTombstone {
  return { vmId: t.vmId ?? '', name: t.name ?? '', owner: t.owner ?? '', epoch: Number(t.epoch ?? 0), deletedAt: Number(t.deletedAtMs ?? 0) }
}
