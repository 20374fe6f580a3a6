import { createHash, randomUUID } from 'node:crypto'
import { ADVERT_LIMITS } from '@meshvirt/mesh'
import { pb, type meshvirt } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'
import type { Logger } from '../log/logger.js'
import type { ClusterClaims } from '../network/cluster-claims.js'
import type { ClusterBook } from '../util/cluster-book.js'
import { validateVmSpec } from '../vm/vm-spec.js'
import { decodeVmSpec } from '../vm/vm-spec-codec.js'
import { GroupInputError } from './errors.js'
import { checkGroupCount, checkGroupName, memberName } from './group-names.js'
import type { VmGroupRecord } from './group-record.js'

export const groupKey = (name: string): string => `group:${name}`

/** Every host gossips every group's template: all of them together stay well inside an advert. */
export const GROUP_TEMPLATES_MAX_BYTES = 64 * 1024

/**
 * `group create`, `group scale` and `group delete`, accepted by any agent, no coordinator: the
 * name is claimed at its rendezvous authorities (as a network's is), the record enters this host's
 * book, and its advert gossips it to every host. The group's owner (group-ownership.ts) does the rest.
 */
export class GroupAdmin {
  constructor (private readonly deps: {
    selfId: string
    book: ClusterBook<VmGroupRecord>
    claims: Pick<ClusterClaims, 'claim' | 'bind' | 'release'>
    log: Logger
    clock?: () => number
  }) {}

  private now (): number { return (this.deps.clock ?? Date.now)() }

  async create (req: meshvirt.v1.ICreateGroup, idempotencyKey: string): Promise<{ group: VmGroupRecord, existed: boolean }> {
    const { book, claims } = this.deps
    const name = req.name ?? ''
    const count = req.count ?? 0
    guard(() => { checkGroupName(name); checkGroupCount(count, 'create') })
    const template = templateFrom(req.template ?? {})
    // The members must be valid VMs: checked as `vm create` checks them, under the longest member name.
    validateVmSpec({ ...decodeVmSpec(template), name: memberName(name, count) })
    const known = book.get(name)
    if (known !== undefined) {
      if (known.count === count && Buffer.from(known.template).equals(Buffer.from(template))) return { group: known, existed: true }
      throw new ControlError('ALREADY_EXISTS', `group ${name} exists with another definition: choose another name, or scale it (meshvirt group scale ${name} --count N)`)
    }
    const used = book.live().reduce((n, g) => n + g.template.length, 0)
    if (used + template.length > GROUP_TEMPLATES_MAX_BYTES) {
      throw new ControlError('RESOURCE_EXHAUSTED', `every host gossips every group's template, and the cluster's groups already take ${used} of ${GROUP_TEMPLATES_MAX_BYTES} bytes: delete a group first`)
    }
    const id = `g${hash(idempotencyKey !== '' ? idempotencyKey : randomUUID()).slice(0, 15)}`
    const claim = await claims.claim(groupKey(name), id, idempotencyKey || id)
    if (!claim.granted) throw new ControlError('ALREADY_EXISTS', `group ${name} is being created by another request: see meshvirt group show ${name}`)
    try {
      const now = this.now()
      const group: VmGroupRecord = { name, id, count, template, revision: 1, updatedAtMs: now, updatedBy: this.deps.selfId, createdAtMs: now, deletedAtMs: 0 }
      book.merge([group])
      await claims.bind(groupKey(name), id)
      this.deps.log.info('group created', { group: name, id, count })
      return { group, existed: false }
    } catch (err) {
      await claims.release(groupKey(name), id)
      throw err
    }
  }

  /** A new desired count: one revision higher, gossiped; the owner creates or deletes members to reach it. */
  scale (name: string, count: number): VmGroupRecord {
    const g = this.find(name)
    guard(() => { checkGroupCount(count, 'scale') })
    if (g.count === count) return g
    const next: VmGroupRecord = { ...g, count, revision: g.revision + 1, updatedAtMs: Math.max(this.now(), g.updatedAtMs + 1), updatedBy: this.deps.selfId }
    this.deps.book.merge([next])
    this.deps.log.info('group scaled', { group: name, from: g.count, to: count, revision: next.revision })
    return next
  }

  /** A tombstone every host hears of; the owner deletes every member, then lets the group go. */
  async delete (name: string): Promise<VmGroupRecord> {
    const g = this.find(name)
    const dead = this.deps.book.tombstone(name) as VmGroupRecord
    await this.deps.claims.release(groupKey(name), g.id)
    this.deps.log.info('group deleted', { group: name, id: g.id })
    return dead
  }

  private find (name: string): VmGroupRecord {
    const g = this.deps.book.get(name)
    if (g === undefined) throw new ControlError('NOT_FOUND', `no group named ${name} (meshvirt group ls lists them)`)
    return g
  }
}

/** The template as gossiped: the spec without a name or group (each member gets its own), encoded and bounded. */
function templateFrom (spec: meshvirt.v1.IVmSpec): Uint8Array {
  for (const nic of spec.nics ?? []) {
    if ((nic.ip ?? '') !== '') throw new ControlError('INVALID_ARGUMENT', `--net ${nic.network ?? ''},ip=${nic.ip ?? ''}: a group's members cannot share one address; leave it out and each member gets its own`)
  }
  const bytes = pb.VmSpec.encode({ ...spec, name: '', group: '' }).finish()
  if (bytes.length > ADVERT_LIMITS.maxGroupTemplateBytes) {
    throw new ControlError('INVALID_ARGUMENT', `the members' spec is ${bytes.length} bytes and every host gossips it: at most ${ADVERT_LIMITS.maxGroupTemplateBytes} (a large --user-data belongs in an image)`)
  }
  return bytes
}

function guard (check: () => void): void {
  try {
    check()
  } catch (err) {
    if (err instanceof GroupInputError) throw new ControlError('INVALID_ARGUMENT', err.message)
    throw err
  }
}

function hash (text: string): string {
  return createHash('sha256').update(text).digest('hex')
}
