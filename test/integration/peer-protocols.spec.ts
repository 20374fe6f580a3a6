import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pb } from '@meshvirt/proto'
import { MIGRATION_CONTROL_PROTOCOL, NAMES_PROTOCOL, NEGOTIATE_PROTOCOL, REPLICA_GROUP_PROTOCOL, type RunningAgent } from '@meshvirt/agent'
import { CHANNEL_PROTOCOL } from '@meshvirt/mesh'
import { pollUntil } from '@meshvirt/testkit'
import { startInProcessCluster, type InProcessCluster } from '../support/in-process-cluster.js'

const PROTOCOLS = [NEGOTIATE_PROTOCOL, NAMES_PROTOCOL, MIGRATION_CONTROL_PROTOCOL, REPLICA_GROUP_PROTOCOL, CHANNEL_PROTOCOL]

/** Sends a NegotiateRequest on `protocol` from `from` to `to`; the decoded answer. */
async function ask (from: RunningAgent, to: RunningAgent, protocol: string, req: object): Promise<ReturnType<typeof pb.NegotiateResponse.decode>> {
  return pb.NegotiateResponse.decode(await from.mesh.request(to.hostId, protocol, pb.NegotiateRequest.encode(req).finish(), { timeoutMs: 5_000 }))
}

// One protocol per concern between hosts (issue 14): two real agents in one process.
describe('peer protocols: one per concern, declared to peers', () => {
  let cluster: InProcessCluster
  beforeAll(async () => { cluster = await startInProcessCluster([{ vcpus: 4, memoryMiB: 1024 }, { vcpus: 4, memoryMiB: 1024 }]) }, 60_000)
  afterAll(async () => { await cluster?.stop() })

  it('every agent declares each protocol, and its peers learn it (identify, pushed when handlers come up)', async () => {
    const [a, b] = cluster.agents as [RunningAgent, RunningAgent]
    await pollUntil(async () => {
      for (const p of PROTOCOLS) if (!await a.mesh.serves(b.hostId, p) || !await b.mesh.serves(a.hostId, p)) return false
      return true
    }, { timeoutMs: 10_000, what: 'both agents to know the other serves the four protocols and request channels' })
    expect(await a.mesh.serves(b.hostId, '/meshvirt/nothing/1.0.0')).toBe(false)
  })

  it('a request is answered on its own protocol, refused on another, and on the placement protocol still (the release before)', async () => {
    const [a, b] = cluster.agents as [RunningAgent, RunningAgent]
    const claim = { claimName: { name: 'proto-web', idempotencyKey: 'k1', vmId: 'vm-proto-1', ttlMs: 5_000 } }
    expect((await ask(a, b, NAMES_PROTOCOL, claim)).nameClaim?.outcome).toBe(pb.NameClaim.Outcome.OUTCOME_GRANTED)
    const wrong = await ask(a, b, REPLICA_GROUP_PROTOCOL, claim)
    expect(wrong.error?.message).toContain(`claimName is not answered on ${REPLICA_GROUP_PROTOCOL} (it belongs to ${NAMES_PROTOCOL})`)
    const reserve = { reserve: { requestId: 'proto/1', brokerId: a.hostId, resources: { vcpus: 1, memoryBytes: 64 * 2 ** 20 }, ttlMs: 1_000 } }
    expect((await ask(a, b, NAMES_PROTOCOL, reserve)).error?.message).toContain(`reserve is not answered on ${NAMES_PROTOCOL}`)
    // The placement protocol answers every kind; the name is held: another request for it is refused.
    const other = { claimName: { name: 'proto-web', idempotencyKey: 'k2', vmId: 'vm-proto-2', ttlMs: 5_000 } }
    expect((await ask(a, b, NEGOTIATE_PROTOCOL, other)).nameClaim).toMatchObject({ outcome: pb.NameClaim.Outcome.OUTCOME_TAKEN, vmId: 'vm-proto-1' })
    expect((await ask(a, b, NEGOTIATE_PROTOCOL, reserve)).reserved?.token).toBeTruthy()
    // Every one of these went on a's one request channel to b, none on a stream of its own.
    const streams = a.mesh.libp2p.getConnections(b.mesh.libp2p.peerId).flatMap((c) => c.streams).filter((s) => s.direction === 'outbound').map((s) => s.protocol)
    expect(streams.filter((p) => p === CHANNEL_PROTOCOL)).toHaveLength(1)
    expect(streams.filter((p) => p !== undefined && PROTOCOLS.includes(p) && p !== CHANNEL_PROTOCOL)).toEqual([])
  })
})
