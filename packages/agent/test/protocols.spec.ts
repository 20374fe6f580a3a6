import { describe, expect, it } from 'vitest'
import { pb } from '@meshvirt/proto'
import { kindOf, NEGOTIATE_PROTOCOL, PEER_PROTOCOLS, PROTOCOL_OF, type NegotiateKind } from '../src/negotiate/protocols.js'

describe('peer protocols: each kind of request has one', () => {
  it('every body of NegotiateRequest belongs to a protocol, and is found as a caller builds it', () => {
    for (const kind of Object.keys(PROTOCOL_OF) as NegotiateKind[]) {
      // What the wire says the kind is, and what a caller's plain object says: the same.
      expect(pb.NegotiateRequest.decode(pb.NegotiateRequest.encode({ [kind]: {} }).finish()).body).toBe(kind)
      expect(kindOf({ [kind]: {} })).toBe(kind)
    }
    // No body of the message is left without a protocol.
    const fields = Object.keys(pb.NegotiateRequest.fromObject({})).concat(Object.keys(pb.NegotiateRequest.prototype)).filter((k) => k !== 'body' && k !== 'toJSON')
    expect(fields.filter((f) => !(f in PROTOCOL_OF))).toEqual([])
    expect(kindOf({})).toBeUndefined()
  })

  it('four protocols: placement, names, migration control, replica groups', () => {
    expect(PEER_PROTOCOLS).toEqual([NEGOTIATE_PROTOCOL, '/meshvirt/names/1.0.0', '/meshvirt/migrate/control/1.0.0', '/meshvirt/replica/group/1.0.0'])
    expect(PROTOCOL_OF).toMatchObject({ reserve: NEGOTIATE_PROTOCOL, claimName: '/meshvirt/names/1.0.0', prepareIncoming: '/meshvirt/migrate/control/1.0.0', promoteReplica: '/meshvirt/replica/group/1.0.0' })
  })
})
