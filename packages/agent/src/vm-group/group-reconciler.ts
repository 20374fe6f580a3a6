import { randomUUID } from 'node:crypto'
import { pb, type meshvirt } from '@meshvirt/proto'
import type { Logger } from '../log/logger.js'
import { desiredCount, templateOf, type VmGroupRecord } from './group-record.js'
import { observed, sightMembers, type MemberSighting, type SeenHost } from './group-members.js'
import { decideReconcile, type ObservedMember } from './reconcile-decision.js'

/** At most this many members are created per round (each is a placement negotiation). */
export const MAX_CREATES_PER_ROUND = 4
/**
 * A member this owner created (or deleted) counts as present (or gone) for this long even before
 * the gossip shows it, so the next round does not create (or delete) it again.
 */
export const SETTLE_MS = 20_000

/** A forgotten member is not forgotten again for this long (its dead host leaves the view within minutes). */
const FORGOTTEN_MS = 15 * 60_000
/** After a create, how long the next one waits for the gossip to show it (placement counts siblings from the adverts). */
const GOSSIP_WAIT_MS = 3_000
/** A member creation's control call: placement, and under load a retry or two (the create's own time-outs). */
const CREATE_TIMEOUT_MS = 120_000

/** What one round did, for the log, `group show` and tests. */
export interface RoundReport {
  created: string[]
  deleted: string[]
  forgotten: string[]
  failed: Array<{ member: string, error: string }>
}

export interface ReconcilerDeps {
  /** The control API of this host (member creates and deletes go through it as an operator's would). */
  control: (req: meshvirt.v1.IControlRequest, timeoutMs?: number) => Promise<meshvirt.v1.IControlResponse>
  hosts: () => readonly SeenHost[]
  /** Whether this host still holds the group's ownership (checked before each batch of actions). */
  holds: (groupId: string) => boolean
  log: Logger
  now?: () => number
}

/**
 * The group's owner brings the members to the count: one round sees the members in the gossip,
 * decides (reconcile-decision.ts) and acts — forgets members lost with a dead host that no
 * replica can bring back (`vm delete --force`: a tombstone every host keeps, so a returning host
 * does not start its copy), deletes the newest beyond the count, creates the missing ones from the
 * template (placement spreads them: the template's group rules). Each member is created and
 * deleted through this host's control API, so it is negotiated like any VM.
 */
export class GroupReconciler {
  /** groupId → member index → until when a create of it counts as present. */
  private readonly creating = new Map<string, Map<number, number>>()
  /** VM id → until when its delete counts as done. */
  private readonly deleting = new Map<string, number>()
  /** VM ids of lost members forgotten (their tombstone made): the dead host's advert shows them a while longer. */
  private readonly forgotten = new Map<string, number>()

  constructor (private readonly deps: ReconcilerDeps) {}

  private now (): number { return (this.deps.now ?? Date.now)() }

  /** The members of a group as the gossip shows them now. */
  members (g: VmGroupRecord): MemberSighting[] {
    return sightMembers(g.name, this.deps.hosts())
  }

  /**
   * Whether a deleted group still has work: a member that exists, or one lost with a dead host that
   * this host has not forgotten yet (a returning host must find its copy condemned).
   */
  hasWork (g: VmGroupRecord): boolean {
    return this.members(g).some((m) => m.state !== 'lost' || !this.forgotten.has(m.vmId))
  }

  /** What a round would count: the sightings, with this owner's own recent creates and deletes. */
  private observe (g: VmGroupRecord, sightings: readonly MemberSighting[]): ObservedMember[] {
    const now = this.now()
    const out: ObservedMember[] = sightings.map((s) => (this.deleting.get(s.vmId) ?? 0) > now ? { index: s.index, state: 'deleting' } : observed(s))
    const recent = this.creating.get(g.id)
    for (const [index, until] of recent ?? []) {
      // Seen once the gossip shows it in any state — lost too (its host died since): only the copy
      // it replaced, already forgotten, does not count.
      const seen = sightings.some((s) => s.index === index && !(s.state === 'lost' && this.forgotten.has(s.vmId)))
      if (seen || until <= now) recent?.delete(index)
      else out.push({ index, state: 'present' })
    }
    if (recent?.size === 0) this.creating.delete(g.id)
    for (const [id, until] of this.deleting) if (until <= now) this.deleting.delete(id)
    return out
  }

  /** One round for a group this host owns. */
  async reconcile (g: VmGroupRecord): Promise<RoundReport> {
    const report: RoundReport = { created: [], deleted: [], forgotten: [], failed: [] }
    const sightings = this.members(g)
    const decision = decideReconcile(g.name, desiredCount(g), this.observe(g, sightings), MAX_CREATES_PER_ROUND)
    const now = this.now()
    for (const [id, until] of this.forgotten) if (until <= now) this.forgotten.delete(id)
    const lost = sightings.filter((s) => s.state === 'lost' && !this.forgotten.has(s.vmId))
    if (decision.create.length === 0 && decision.delete.length === 0 && lost.length === 0) return report
    const fail = (member: string, err: unknown): void => { report.failed.push({ member, error: (err as Error).message }) }

    // Lost members are forgotten first: their names are free again, for the creates below.
    const forgotten = new Set<number>()
    if (this.deps.holds(g.id)) {
      await Promise.all(lost.map(async (s) => {
        try {
          await this.deps.control({ deleteVm: { vm: { id: s.vmId }, force: true } })
          report.forgotten.push(s.vmName)
        } catch (err) {
          // NOT_FOUND: already forgotten (by a previous owner of the group).
          if ((err as { code?: string }).code !== 'NOT_FOUND') return fail(s.vmName, err)
        }
        this.forgotten.set(s.vmId, this.now() + FORGOTTEN_MS)
        forgotten.add(s.index)
      }))
    }
    const byIndex = new Map(sightings.filter((s) => s.state !== 'lost').map((s) => [s.index, s]))
    const lostIndexes = new Set(lost.map((s) => s.index))
    if (!this.deps.holds(g.id)) return report
    await Promise.all([
      ...decision.delete.map(async (d) => {
        const s = byIndex.get(d.index)
        if (s === undefined) return
        try {
          this.deleting.set(s.vmId, this.now() + SETTLE_MS)
          await this.deps.control({ deleteVm: { vm: { id: s.vmId } } })
          report.deleted.push(d.name)
        } catch (err) {
          this.deleting.delete(s.vmId)
          if ((err as { code?: string }).code === 'NOT_FOUND') return
          fail(d.name, err)
        }
      }),
      // Creates one after another, each once the gossip shows the one before: placement then sees
      // where its siblings went and spreads them (concurrent creates would all pick the emptiest host).
      (async () => {
        for (const c of decision.create) {
          if (lostIndexes.has(c.index) && !forgotten.has(c.index)) continue
          if (!this.deps.holds(g.id)) return
          await this.create(g, c, report)
        }
      })()
    ])
    return report
  }

  private async create (g: VmGroupRecord, c: { index: number, name: string }, report: RoundReport): Promise<void> {
    const recent = this.creating.get(g.id) ?? new Map<number, number>()
    this.creating.set(g.id, recent)
    recent.set(c.index, this.now() + SETTLE_MS)
    try {
      await this.deps.control({ idempotencyKey: `${g.id}/${c.index}/${randomUUID()}`, createVm: { spec: memberSpec(g, c.name) } }, CREATE_TIMEOUT_MS)
      report.created.push(c.name)
    } catch (err) {
      recent.delete(c.index)
      // Someone else's VM has the name (or a create of it by a previous owner landed meanwhile): the next round sees it.
      if ((err as { code?: string }).code !== 'ALREADY_EXISTS') report.failed.push({ member: c.name, error: (err as Error).message })
      return
    }
    const seenBy = this.now() + GOSSIP_WAIT_MS
    while (this.now() < seenBy && !this.members(g).some((s) => s.index === c.index && s.state !== 'lost')) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
}

/**
 * A member's spec: the template under the member's name, in the group's placement group, and
 * spread from its siblings (soft anti-affinity on the group: each host takes one before any takes
 * two; then the spread policy, unless the template chose one; the template's own `--spread-by`
 * spreads them over domains too).
 */
export function memberSpec (g: VmGroupRecord, name: string): meshvirt.v1.IVmSpec {
  const t = templateOf(g)
  const hard = (t.antiAffinity ?? []).includes(g.name)
  const soft = [...new Set([...(t.softAntiAffinity ?? []), ...(hard ? [] : [g.name])])]
  // Unless the template asks otherwise, members go to the emptiest hosts (binpack would stack them).
  const policy = t.policy === pb.PlacementPolicy.PLACEMENT_POLICY_UNSPECIFIED ? pb.PlacementPolicy.PLACEMENT_POLICY_SPREAD : t.policy
  return { ...t, name, group: g.name, softAntiAffinity: soft, policy }
}
