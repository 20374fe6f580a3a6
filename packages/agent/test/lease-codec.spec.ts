import { describe, expect, it } from 'vitest'
import { pb } from '@meshvirt/proto'
import { decodeLeaseRequest, decodeLeaseResponse, encodeLeaseError, encodeLeaseRequest, encodeLeaseResponse } from '../src/lease/lease-codec.js'
import type { LeaseAnswerMessage, LeaseRequestMessage } from '../src/lease/types.js'

const A = '12D3KooWAbc'
const B = '12D3KooWBcd'

describe('lease codec', () => {
  it('round-trips every message', () => {
    const requests: LeaseRequestMessage[] = [
      { type: 'renew', vmId: 'vm-1', epoch: 3, members: [A, B], leaseMs: 3000, round: 17 },
      { type: 'request-vote', vmId: 'vm-2', epoch: 4, members: [A, B], position: { epoch: 3, seq: 12, takenAt: 1_700_000_000_000 }, round: 2, preVote: true },
      { type: 'request-vote', vmId: 'vm-2', epoch: 4, members: [A, B], position: { epoch: 3, seq: 12, takenAt: 1 }, round: 3 }
    ]
    expect(decodeLeaseRequest(encodeLeaseRequest(requests))).toEqual(requests)
    const answers: LeaseAnswerMessage[] = [
      { type: 'granted', vmId: 'vm-1', epoch: 3, round: 17 },
      { type: 'refused', vmId: 'vm-1', epoch: 3, round: 17, reason: 'stale-epoch', knownEpoch: 5, owner: B, elected: true },
      { type: 'vote', vmId: 'vm-2', epoch: 4, round: 2, granted: true, knownEpoch: 3, owner: A, elected: true },
      { type: 'vote', vmId: 'vm-2', epoch: 4, round: 3, granted: false, reason: 'fresher-here', knownEpoch: 3, owner: '', elected: false }
    ]
    expect(decodeLeaseResponse(encodeLeaseResponse(answers))).toEqual(answers)
  })

  it.each([
    ['an answer in a request', pb.LeaseRequest.encode({ messages: [{ granted: { vmId: 'vm-1', epoch: 1, round: 1 } }] }).finish(), /carries a granted/],
    ['epoch 0', pb.LeaseRequest.encode({ messages: [{ renew: { vmId: 'vm-1', epoch: 0, members: [A, B], leaseMs: 1000, round: 1 } }] }).finish(), /epoch must be ≥ 1/],
    ['a bad VM id', pb.LeaseRequest.encode({ messages: [{ renew: { vmId: '../x', epoch: 1, members: [A, B], leaseMs: 1000, round: 1 } }] }).finish(), /bad VM id/],
    ['a group of one', pb.LeaseRequest.encode({ messages: [{ renew: { vmId: 'vm-1', epoch: 1, members: [A], leaseMs: 1000, round: 1 } }] }).finish(), /2 to 32 members/],
    ['a host twice', pb.LeaseRequest.encode({ messages: [{ renew: { vmId: 'vm-1', epoch: 1, members: [A, A], leaseMs: 1000, round: 1 } }] }).finish(), /names a host twice/],
    ['a huge lease', pb.LeaseRequest.encode({ messages: [{ renew: { vmId: 'vm-1', epoch: 1, members: [A, B], leaseMs: 3_600_000, round: 1 } }] }).finish(), /lease_ms must be in/],
    ['a vote request without position', pb.LeaseRequest.encode({ messages: [{ requestVote: { vmId: 'vm-1', epoch: 2, members: [A, B], round: 1 } }] }).finish(), /without a position/],
    ['an empty message', pb.LeaseRequest.encode({ messages: [{}] }).finish(), /without a body/],
    ['garbage', Uint8Array.from([0xff, 0xff, 0xff]), /undecodable/]
  ])('refuses %s', (_name, bytes, message) => {
    expect(() => decodeLeaseRequest(bytes)).toThrow(message)
  })

  it('refuses bad answers and surfaces an error answer', () => {
    expect(() => decodeLeaseResponse(pb.LeaseResponse.encode({ messages: [{ vote: { vmId: 'vm-1', epoch: 2, round: 1, granted: false } }] }).finish())).toThrow(/without a reason/)
    expect(() => decodeLeaseResponse(pb.LeaseResponse.encode({ messages: [{ refused: { vmId: 'vm-1', epoch: 2, round: 1, reason: 99 as never } }] }).finish())).toThrow(/unknown lease refusal 99/)
    expect(() => decodeLeaseResponse(encodeLeaseError('UNAVAILABLE', 'stopping'))).toThrow(/UNAVAILABLE: stopping/)
  })
})
