/**
 * Wire ↔ domain for `/meshvirt/lease/1.0.0`. Every decoded message is validated (ids, integer
 * ranges, member lists, enum values) before the lease table sees it; a bad request throws
 * LeaseProtocolError with the reason (the service answers INVALID_ARGUMENT).
 */
import { pb, type meshvirt } from '@meshvirt/proto'
import { LeaseProtocolError } from './errors.js'
import type { LeaseAnswerMessage, LeaseMessage, LeasePosition, LeaseRefusal, LeaseRequestMessage } from './types.js'

const VM_ID = /^[a-z0-9][a-z0-9._-]{0,62}$/
const HOST_ID = /^[A-Za-z0-9]{1,128}$/
/** Requests in one batch: every VM two hosts share, plus votes. */
export const MAX_LEASE_BATCH = 1024
export const MAX_GROUP_MEMBERS = 32
/** A grant longer than this is refused as invalid: it would only delay failover. */
export const MAX_LEASE_MS = 60_000

const R = pb.LeaseRefusal
const REFUSALS: Record<LeaseRefusal, number> = {
  'stale-epoch': R.LEASE_REFUSAL_STALE_EPOCH,
  promised: R.LEASE_REFUSAL_PROMISED,
  'lease-held': R.LEASE_REFUSAL_LEASE_HELD,
  restarting: R.LEASE_REFUSAL_RESTARTING,
  'not-member': R.LEASE_REFUSAL_NOT_MEMBER,
  'unknown-vm': R.LEASE_REFUSAL_UNKNOWN_VM,
  'fresher-here': R.LEASE_REFUSAL_FRESHER_HERE,
  'owner-alive': R.LEASE_REFUSAL_OWNER_ALIVE,
  invalid: R.LEASE_REFUSAL_INVALID
}

export function encodeLeaseRequest (messages: LeaseRequestMessage[]): Uint8Array {
  return pb.LeaseRequest.encode({ messages: messages.map(toWire) }).finish()
}

export function decodeLeaseRequest (bytes: Uint8Array): LeaseRequestMessage[] {
  let w: meshvirt.v1.LeaseRequest
  try { w = pb.LeaseRequest.decode(bytes) } catch (err) { throw new LeaseProtocolError('undecodable lease request', { cause: err }) }
  return batch(w.messages).map((m) => {
    const d = fromWire(m)
    if (d.type !== 'renew' && d.type !== 'request-vote') throw new LeaseProtocolError(`a lease request carries a ${d.type}`)
    return d
  })
}

export function encodeLeaseResponse (messages: LeaseAnswerMessage[]): Uint8Array {
  return pb.LeaseResponse.encode({ messages: messages.map(toWire) }).finish()
}

export function encodeLeaseError (code: string, message: string): Uint8Array {
  return pb.LeaseResponse.encode({ error: { code, message } }).finish()
}

/** The answers of a response; throws LeaseProtocolError for an error answer or a malformed one. */
export function decodeLeaseResponse (bytes: Uint8Array): LeaseAnswerMessage[] {
  let w: meshvirt.v1.LeaseResponse
  try { w = pb.LeaseResponse.decode(bytes) } catch (err) { throw new LeaseProtocolError('undecodable lease response', { cause: err }) }
  if (w.error != null) throw new LeaseProtocolError(`peer answered ${w.error.code}: ${w.error.message}`)
  return batch(w.messages).map((m) => {
    const d = fromWire(m)
    if (d.type === 'renew' || d.type === 'request-vote') throw new LeaseProtocolError(`a lease response carries a ${d.type}`)
    return d
  })
}

function toWire (m: LeaseMessage): meshvirt.v1.ILeaseMessage {
  switch (m.type) {
    case 'renew': return { renew: { vmId: m.vmId, epoch: m.epoch, members: m.members, leaseMs: m.leaseMs, round: m.round, ...(m.handover !== undefined ? { handoverTo: m.handover.to, handoverEpoch: m.handover.epoch } : {}) } }
    case 'granted': return { granted: { vmId: m.vmId, epoch: m.epoch, round: m.round } }
    case 'refused': return { refused: { vmId: m.vmId, epoch: m.epoch, round: m.round, reason: REFUSALS[m.reason], knownEpoch: m.knownEpoch, owner: m.owner, elected: m.elected } }
    case 'request-vote': return { requestVote: { vmId: m.vmId, epoch: m.epoch, members: m.members, position: { epoch: m.position.epoch, seq: m.position.seq, takenAtMs: m.position.takenAt }, round: m.round, preVote: m.preVote === true } }
    case 'vote': return {
      vote: {
        vmId: m.vmId, epoch: m.epoch, round: m.round, granted: m.granted, reason: m.reason === undefined ? R.LEASE_REFUSAL_NONE : REFUSALS[m.reason],
        knownEpoch: m.knownEpoch, owner: m.owner, elected: m.elected
      }
    }
  }
}

function fromWire (w: meshvirt.v1.ILeaseMessage): LeaseMessage {
  const m = w instanceof pb.LeaseMessage ? w : pb.LeaseMessage.fromObject(w)
  switch (m.body) {
    case 'renew': {
      const r = m.renew as meshvirt.v1.ILeaseRenew
      const members = membersOf(r.members)
      const leaseMs = int(r.leaseMs, 'lease_ms')
      if (leaseMs === 0 || leaseMs > MAX_LEASE_MS) throw new LeaseProtocolError(`lease_ms must be in 1..${MAX_LEASE_MS}, not ${leaseMs}`)
      const epoch = epochOf(r.epoch)
      const handoverTo = r.handoverTo ?? ''
      const handoverEpoch = int(r.handoverEpoch, 'handover_epoch')
      if (handoverTo !== '' && (!HOST_ID.test(handoverTo) || handoverEpoch !== epoch + 1)) throw new LeaseProtocolError(`a hand-over names a host id and epoch ${epoch + 1}, not ${JSON.stringify(handoverTo)} at ${handoverEpoch}`)
      return { type: 'renew', vmId: vmIdOf(r.vmId), epoch, members, leaseMs, round: int(r.round, 'round'), ...(handoverTo !== '' ? { handover: { to: handoverTo, epoch: handoverEpoch } } : {}) }
    }
    case 'granted': {
      const g = m.granted as meshvirt.v1.ILeaseGranted
      return { type: 'granted', vmId: vmIdOf(g.vmId), epoch: epochOf(g.epoch), round: int(g.round, 'round') }
    }
    case 'refused': {
      const f = m.refused as meshvirt.v1.ILeaseRefused
      const reason = refusalOf(f.reason)
      if (reason === undefined) throw new LeaseProtocolError('a refusal without a reason')
      return { type: 'refused', vmId: vmIdOf(f.vmId), epoch: int(f.epoch, 'epoch'), round: int(f.round, 'round'), reason, ...knowledgeOf(f) }
    }
    case 'requestVote': {
      const v = m.requestVote as meshvirt.v1.ILeaseRequestVote
      const p = v.position
      if (p == null) throw new LeaseProtocolError('a request-vote without a position')
      const position: LeasePosition = { epoch: int(p.epoch, 'position epoch'), seq: int(p.seq, 'position seq'), takenAt: int(p.takenAtMs, 'position taken_at_ms') }
      return { type: 'request-vote', vmId: vmIdOf(v.vmId), epoch: epochOf(v.epoch), members: membersOf(v.members), position, round: int(v.round, 'round'), ...(v.preVote === true ? { preVote: true } : {}) }
    }
    case 'vote': {
      const v = m.vote as meshvirt.v1.ILeaseVote
      const reason = refusalOf(v.reason)
      const granted = v.granted === true
      if (!granted && reason === undefined) throw new LeaseProtocolError('a refused vote without a reason')
      return { type: 'vote', vmId: vmIdOf(v.vmId), epoch: epochOf(v.epoch), round: int(v.round, 'round'), granted, ...(!granted && reason !== undefined ? { reason } : {}), ...knowledgeOf(v) }
    }
    default: throw new LeaseProtocolError('a lease message without a body')
  }
}

function batch (messages: meshvirt.v1.ILeaseMessage[] | null | undefined): meshvirt.v1.ILeaseMessage[] {
  const list = messages ?? []
  if (list.length > MAX_LEASE_BATCH) throw new LeaseProtocolError(`a lease batch carries at most ${MAX_LEASE_BATCH} messages, not ${list.length}`)
  return list
}

function knowledgeOf (w: { knownEpoch?: number | null, owner?: string | null, elected?: boolean | null }): { knownEpoch: number, owner: string, elected: boolean } {
  const owner = w.owner ?? ''
  if (owner !== '' && !HOST_ID.test(owner)) throw new LeaseProtocolError(`bad owner host id ${JSON.stringify(owner)}`)
  return { knownEpoch: int(w.knownEpoch, 'known_epoch'), owner, elected: w.elected === true }
}

function refusalOf (code: number | null | undefined): LeaseRefusal | undefined {
  if (code == null || code === R.LEASE_REFUSAL_NONE) return undefined
  const refusal = (Object.keys(REFUSALS) as LeaseRefusal[]).find((k) => REFUSALS[k] === code)
  if (refusal === undefined) throw new LeaseProtocolError(`unknown lease refusal ${code}`)
  return refusal
}

function membersOf (v: string[] | null | undefined): string[] {
  const members = v ?? []
  if (members.length < 2 || members.length > MAX_GROUP_MEMBERS) throw new LeaseProtocolError(`a group has 2 to ${MAX_GROUP_MEMBERS} members, not ${members.length}`)
  for (const m of members) if (!HOST_ID.test(m)) throw new LeaseProtocolError(`bad member host id ${JSON.stringify(m)}`)
  if (new Set(members).size !== members.length) throw new LeaseProtocolError('a group names a host twice')
  return [...members]
}

function epochOf (v: number | null | undefined): number {
  const n = int(v, 'epoch')
  if (n === 0) throw new LeaseProtocolError('epoch must be ≥ 1')
  return n
}

function int (v: number | null | undefined, what: string): number {
  const n = v ?? 0
  if (!Number.isSafeInteger(n) || n < 0) throw new LeaseProtocolError(`${what} must be a non-negative integer, not ${String(v)}`)
  return n
}

function vmIdOf (v: string | null | undefined): string {
  if (v == null || !VM_ID.test(v)) throw new LeaseProtocolError(`bad VM id ${JSON.stringify(v)}`)
  return v
}
