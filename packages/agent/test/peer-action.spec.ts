import { pb, type meshvirt } from '@meshvirt/proto'
import { describe, expect, it } from 'vitest'
import { clampTtl, parsePeerRequest } from '../src/negotiate/peer-action.js'
import { MIGRATION_CONTROL_PROTOCOL, NAMES_PROTOCOL, NEGOTIATE_PROTOCOL, PROTOCOL_OF, REPLICA_GROUP_PROTOCOL, type NegotiateKind } from '../src/negotiate/protocols.js'

const MIB = 2 ** 20
const spec: meshvirt.v1.IVmSpec = { name: 'web-1', resources: { vcpus: 1, memoryBytes: 128 * MIB, diskBytes: 32 * MIB }, boot: { kernel: '/boot/vmlinuz' } }
const req = (body: meshvirt.v1.INegotiateRequest): meshvirt.v1.NegotiateRequest => pb.NegotiateRequest.decode(pb.NegotiateRequest.encode(body).finish())

/** One well-formed request of every kind, and the action it parses into. */
const EVERY_KIND: Record<NegotiateKind, [meshvirt.v1.INegotiateRequest, Record<string, unknown>]> = {
  reserve: [{ reserve: { requestId: 'r1', brokerId: 'b', resources: spec.resources, ttlMs: 5_000, spec } },
    { kind: 'reserve', requestId: 'r1', brokerId: 'b', resources: { vcpus: 1, memoryBytes: 128 * MIB, diskBytes: 32 * MIB }, ttlMs: 5_000, replica: false, spec: expect.objectContaining({ name: 'web-1' }) }],
  commit: [{ commit: { token: 't', vmId: 'vm-1', idempotencyKey: 'k', spec } }, { kind: 'commit', token: 't', vmId: 'vm-1', idempotencyKey: 'k', spec: expect.objectContaining({ name: 'web-1' }), placement: null }],
  release: [{ release: { token: 't' } }, { kind: 'release', token: 't' }],
  claimName: [{ claimName: { name: 'web-1', idempotencyKey: 'k', vmId: 'vm-1', ttlMs: 0 } }, { kind: 'claimName', name: 'web-1', idempotencyKey: 'k', vmId: 'vm-1', ttlMs: 10_000 }],
  bindName: [{ bindName: { name: 'web-1', vmId: 'vm-1', owner: 'h', release: false } }, { kind: 'bindName', name: 'web-1', vmId: 'vm-1', owner: 'h', release: false }],
  prepareIncoming: [{ prepareIncoming: { token: 't', vmId: 'vm-1', spec } }, { kind: 'prepareIncoming', request: expect.objectContaining({ vmId: 'vm-1' }) }],
  completeIncoming: [{ completeIncoming: { vmId: 'vm-1' } }, { kind: 'completeIncoming', request: expect.objectContaining({ vmId: 'vm-1' }) }],
  abortIncoming: [{ abortIncoming: { vmId: 'vm-1' } }, { kind: 'abortIncoming', request: expect.objectContaining({ vmId: 'vm-1' }) }],
  holdReplica: [{ holdReplica: { vmId: 'vm-1', token: '' } }, { kind: 'holdReplica', request: expect.objectContaining({ vmId: 'vm-1' }) }],
  dropReplica: [{ dropReplica: { vmId: 'vm-1', epoch: 3 } }, { kind: 'dropReplica', vmId: 'vm-1', epoch: 3 }],
  queryReplica: [{ queryReplica: { vmId: 'vm-1' } }, { kind: 'queryReplica', vmId: 'vm-1' }],
  promoteReplica: [{ promoteReplica: { vmId: 'vm-1' } }, { kind: 'promoteReplica', vmId: 'vm-1' }]
}

describe('peer requests: parse, then act', () => {
  it.each(Object.entries(EVERY_KIND))('%s parses into its action, on its own protocol and on the placement protocol', (kind, [body, action]) => {
    expect(parsePeerRequest(req(body), PROTOCOL_OF[kind as NegotiateKind])).toEqual(action)
    expect(parsePeerRequest(req(body), NEGOTIATE_PROTOCOL)).toEqual(action)
  })

  it.each([
    ['a name claim on the migration protocol', { claimName: EVERY_KIND.claimName[0].claimName }, MIGRATION_CONTROL_PROTOCOL, /claimName is not answered on \/meshvirt\/migrate\/control\/1\.0\.0 \(it belongs to \/meshvirt\/names\/1\.0\.0\)/],
    ['a reserve on the names protocol', { reserve: EVERY_KIND.reserve[0].reserve }, NAMES_PROTOCOL, /reserve is not answered on \/meshvirt\/names/],
    ['a hold on the names protocol', { holdReplica: { vmId: 'vm-1' } }, NAMES_PROTOCOL, /belongs to \/meshvirt\/replica\/group/],
    ['an empty request', {}, REPLICA_GROUP_PROTOCOL, /empty negotiate request/]
  ] as const)('refuses %s', (_what, body, protocol, error) => {
    expect(() => parsePeerRequest(req(body), protocol)).toThrow(error)
  })

  it.each([
    ['a reserve without a request id', { reserve: { requestId: '', resources: spec.resources } }, /request_id must be 1–200 characters/],
    ['a reserve for no CPU', { reserve: { requestId: 'r', resources: { vcpus: 0, memoryBytes: MIB } } }, /needs vcpus > 0 and memory > 0/],
    ['a replica reservation with memory', { reserve: { requestId: 'r', role: pb.VmRole.VM_ROLE_REPLICA, resources: { memoryBytes: MIB, diskBytes: MIB } } }, /disk only/],
    ['a commit without a spec', { commit: { token: 't', vmId: 'v', idempotencyKey: 'k' } }, /commit without a VM spec/],
    ['a commit of a bad spec', { commit: { token: 't', vmId: 'v', idempotencyKey: 'k', spec: { ...spec, name: 'Bad Name' } } }, /VM name 'Bad Name'/],
    ['a commit without a token', { commit: { vmId: 'v', idempotencyKey: 'k', spec } }, /^token must be/],
    ['a release of nothing', { release: {} }, /token or request_id must be/],
    ['a name claim without a VM', { claimName: { name: 'n', idempotencyKey: 'k' } }, /vm_id must be/],
    ['an over-long name', { bindName: { name: 'x'.repeat(201), vmId: 'v' } }, /name must be 1–200 characters/],
    ['a migration without its token', { prepareIncoming: { vmId: 'v' } }, /^token must be/],
    ['a hold with an over-long token', { holdReplica: { vmId: 'v', token: 't'.repeat(300) } }, /^token must be/],
    ['a promotion of no VM', { promoteReplica: {} }, /vm_id must be/]
  ] as const)('refuses %s, naming the field', (_what, body, error) => {
    expect(() => parsePeerRequest(req(body))).toThrow(error)
  })

  it('a replica reservation carries no spec to admit; a release by request id is its own action', () => {
    const replica = parsePeerRequest(req({ reserve: { requestId: 'r', role: pb.VmRole.VM_ROLE_REPLICA, resources: { diskBytes: MIB }, spec } }))
    expect(replica).toMatchObject({ kind: 'reserve', replica: true, spec: undefined })
    expect(parsePeerRequest(req({ release: { requestId: 'r' } }))).toEqual({ kind: 'releaseRequest', requestId: 'r' })
  })

  it.each([[0, 10_000], [-5, 10_000], [50, 100], [5_000, 5_000], [10 * 60_000, 120_000]])('a time-to-live of %i ms is taken as %i ms', (asked, taken) => {
    expect(clampTtl(asked)).toBe(taken)
  })
})
