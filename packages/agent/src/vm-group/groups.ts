import type { ClusterView, HostAdvertContent } from '@meshvirt/mesh'
import type { meshvirt } from '@meshvirt/proto'
import type { Handler } from '../control/control-handler.js'
import { ControlError } from '../control/errors.js'
import type { Logger } from '../log/logger.js'
import type { EventDraft } from '../monitor/cluster-event.js'
import { nameAuthorities } from '../negotiate/name-authority.js'
import type { PeerClient } from '../negotiate/peer-client.js'
import { ClusterClaims } from '../network/cluster-claims.js'
import { GroupStore } from '../store/group-store.js'
import type { StateStore } from '../store/state-store.js'
import { ClusterBook, isLive } from '../util/cluster-book.js'
import { GroupAdmin } from './group-admin.js'
import type { MemberSighting } from './group-members.js'
import { GroupOwnership, ownerKey, type OwnershipTiming } from './group-ownership.js'
import { GROUP_TOMBSTONE_TTL_MS, groupToWire, preferredGroup, sameGroup, type VmGroupRecord } from './group-record.js'
import { GroupReconciler } from './group-reconciler.js'
import { compareText } from '../util/compare-text.js'

/** How often the owner looks at its groups (and candidates try to take over a group nobody holds). */
export const GROUP_TICK_MS = 1_000

export interface GroupsDeps {
  store: StateStore
  log: Logger
  /** The advert should be published again (the book or the groups held changed). */
  readvertise: () => void
  timing?: OwnershipTiming
  tickMs?: number
}

/**
 * VM groups (`group create|scale|ls|show|delete`): the cluster's groups (a book merged from
 * gossip, like the networks'), the ownership lease of each (group-ownership.ts) and, for the groups
 * this host owns, the reconciliation that keeps each at its count (group-reconciler.ts).
 *
 * Who owns a group: the host holding `group-owner:ID`. Nobody coordinates who tries: when no live
 * host advertises a group as its own, the first live host in the group's rendezvous order claims
 * it (every host computes the same order), and the claim's majority settles any race.
 */
export class Groups {
  readonly book: ClusterBook<VmGroupRecord>
  private view: ClusterView | undefined
  private selfId = ''
  private admin: GroupAdmin | undefined
  private ownership: GroupOwnership | undefined
  private reconciler: GroupReconciler | undefined
  private readonly rounds = new Set<string>()
  private timer: NodeJS.Timeout | undefined
  private unsubscribe: (() => void) | undefined
  /** Cluster events (monitoring's), once monitoring runs. */
  private emit: (d: EventDraft) => void = () => {}

  constructor (private readonly deps: GroupsDeps) {
    this.book = new ClusterBook(new GroupStore(deps.store), { preferred: preferredGroup, same: sameGroup, tombstoneTtlMs: GROUP_TOMBSTONE_TTL_MS }, () => { deps.readvertise() })
  }

  /** Where the group events go (monitoring starts after the features). */
  emitTo (emit: (d: EventDraft) => void): void {
    this.emit = emit
  }

  /** Follows the mesh: every advert's groups are merged; the loop owns and reconciles. */
  attach (view: ClusterView, peers: PeerClient, selfId: string): void {
    this.view = view
    this.selfId = selfId
    const claims = new ClusterClaims({ selfId, view, peers, log: this.deps.log })
    this.admin = new GroupAdmin({ selfId, book: this.book, claims, log: this.deps.log })
    // Ownership is decided among the live hosts (a lease must stay renewable when hosts die; the
    // view's dead stay in it for minutes), and only by a host that sees most of the cluster alive.
    const liveView = { hosts: () => view.hosts().filter((h) => h.liveness !== 'dead'), get: (id: string) => view.get(id) }
    this.ownership = new GroupOwnership({
      selfId, claims: new ClusterClaims({ selfId, view: liveView, peers, log: this.deps.log }), ...(this.deps.timing !== undefined ? { timing: this.deps.timing } : {}),
      onChange: () => { this.deps.readvertise() },
      onAcquired: (id) => {
        const g = this.book.all().find((x) => x.id === id)
        if (g !== undefined) this.emit({ kind: 'group-owned', subjectHostId: selfId, message: `this host reconciles group ${g.name} now (no live host held it)` })
      },
      onError: (groupId, err) => { this.deps.log.debug('could not renew a group\'s ownership', { group: groupId, err: err.message }) }
    })
    const ownership = this.ownership
    this.reconciler = new GroupReconciler({
      control: async (req, timeoutMs) => await peers.control(selfId, req, timeoutMs),
      hosts: () => view.hosts(),
      holds: (id) => ownership.holds(id),
      log: this.deps.log
    })
    for (const h of view.hosts()) if (!h.self) this.book.merge(h.advert.groups)
    this.unsubscribe = view.subscribe((e) => {
      if (!e.host.self && e.type !== 'removed') this.book.merge(e.host.advert.groups)
    })
    this.timer = setInterval(() => { this.tick() }, this.deps.tickMs ?? GROUP_TICK_MS)
    this.timer.unref()
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.unsubscribe?.()
    await this.ownership?.releaseAll()
  }

  /** This host's part of its advert. */
  advert (): Pick<HostAdvertContent, 'groups' | 'groupsOwned'> {
    return { groups: this.book.all(), groupsOwned: this.ownership?.owned() ?? [] }
  }

  /** Name authorities refuse `group:NAME` to another creation while the group lives (its claim may have lapsed). */
  keyUser (key: string): string | undefined {
    if (!key.startsWith('group:')) return undefined
    return this.book.get(key.slice('group:'.length))?.id
  }

  handlers (): Record<string, Handler> {
    return {
      createGroup: async (req) => {
        const { group, existed } = await this.requireAdmin().create(req.createGroup ?? {}, req.idempotencyKey !== '' ? req.idempotencyKey : req.requestId)
        if (!existed) this.emit({ kind: 'group-scaled', subjectHostId: this.selfId, message: `group ${group.name} created with ${group.count} member(s)` })
        return { group: this.info(group) }
      },
      scaleGroup: async (req) => {
        const name = req.scaleGroup?.name ?? ''
        const before = this.book.get(name)?.count
        const group = this.requireAdmin().scale(name, req.scaleGroup?.count ?? 0)
        if (before !== group.count) this.emit({ kind: 'group-scaled', subjectHostId: this.selfId, message: `group ${name} scaled from ${String(before)} to ${group.count}` })
        return { group: this.info(group) }
      },
      deleteGroup: async (req) => {
        const group = await this.requireAdmin().delete(req.deleteGroup?.name ?? '')
        this.emit({ kind: 'group-scaled', subjectHostId: this.selfId, message: `group ${group.name} deleted: its members go` })
        return { group: this.info(group) }
      },
      listGroups: async () => ({ groupList: { groups: this.book.all().sort((a, b) => compareText(a.name, b.name)).flatMap((g) => this.shown(g) ?? []) } }),
      inspectGroup: async (req) => {
        const name = req.inspectGroup?.name ?? ''
        const g = this.book.record(name)
        const shown = g === undefined ? undefined : this.shown(g)
        if (shown === undefined) throw new ControlError('NOT_FOUND', `no group named ${name} (meshvirt group ls lists them)`)
        return { group: shown }
      }
    }
  }

  /** A live group, or a deleted one whose members are still being removed (else undefined: nothing to show). */
  private shown (g: VmGroupRecord): meshvirt.v1.IGroupInfo | undefined {
    const members = this.members(g)
    return isLive(g) || members.some((m) => m.state !== 'lost') ? this.info(g, members) : undefined
  }

  private members (g: VmGroupRecord): MemberSighting[] {
    return this.reconciler?.members(g) ?? []
  }

  private info (g: VmGroupRecord, members = this.members(g)): meshvirt.v1.IGroupInfo {
    const owner = this.ownerOf(g)
    return {
      group: groupToWire(g),
      owner,
      ownerHostname: owner === '' ? '' : this.view?.get(owner)?.advert.hostname ?? '',
      members: members.map((m) => ({ index: m.index, vmId: m.vmId, vmName: m.vmName, state: m.state, hostId: m.hostId, hostname: m.hostname }))
    }
  }

  /** The live host that advertises the group as its own ('' when none does). */
  private ownerOf (g: VmGroupRecord): string {
    if (this.ownership?.holds(g.id) === true) return this.selfId
    const h = this.view?.hosts().find((x) => !x.self && x.liveness !== 'dead' && x.advert.groupsOwned.includes(g.id))
    return h?.hostId ?? ''
  }

  private tick (): void {
    const view = this.view
    const ownership = this.ownership
    const reconciler = this.reconciler
    if (view === undefined || ownership === undefined || reconciler === undefined) return
    this.book.prune()
    const alive = view.hosts().filter((h) => h.liveness !== 'dead').map((h) => h.hostId)
    const wanted: Array<{ groupId: string, claim: boolean }> = []
    const mine: VmGroupRecord[] = []
    // In a minority (a partition, or most hosts dead): own nothing, so the majority's owner is the only one.
    const quorum = alive.length * 2 > view.hosts().length
    for (const g of quorum ? this.book.all() : []) {
      // A deleted group is owned until its last member is gone (or forgotten, when lost with its host).
      if (!isLive(g) && !reconciler.hasWork(g)) continue
      const candidate = this.ownerOf(g) === '' && nameAuthorities(ownerKey(g.id), alive)[0] === this.selfId
      wanted.push({ groupId: g.id, claim: candidate })
      if (ownership.holds(g.id)) mine.push(g)
    }
    ownership.tick(wanted)
    for (const g of mine) {
      if (this.rounds.has(g.id)) continue
      this.rounds.add(g.id)
      void reconciler.reconcile(g).then((r) => {
        if (r.created.length + r.deleted.length + r.forgotten.length + r.failed.length === 0) return
        for (const name of r.forgotten) {
          const again = r.created.includes(name) ? 'created again' : 'not created again (beyond the count)'
          this.emit({ kind: 'group-member-replaced', vmName: name, subjectHostId: this.selfId, message: `${name} of group ${g.name} was lost with its host (dead, no replica): forgotten and ${again}` })
        }
        this.deps.log.info('group reconciled', { group: g.name, count: isLive(g) ? g.count : 0, created: r.created, deleted: r.deleted, forgotten: r.forgotten, failed: r.failed.map((f) => `${f.member}: ${f.error}`) })
      }, (err: unknown) => {
        this.deps.log.warn('group reconciliation failed', { group: g.name, err: (err as Error).message })
      }).finally(() => { this.rounds.delete(g.id) })
    }
  }

  private requireAdmin (): GroupAdmin {
    if (this.admin === undefined) throw new ControlError('UNAVAILABLE', 'the agent is still joining the cluster; retry in a moment')
    return this.admin
  }
}
