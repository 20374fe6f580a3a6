import { emptyAdvertContent, type ClusterView, type HostAdvert, type HostEntry } from '@meshvirt/mesh'
import { pb, type meshvirt } from '@meshvirt/proto'
import { describe, expect, it } from 'vitest'
import { silentLogger } from '../src/log/logger.js'
import { Broker, MAX_CONCURRENT_PLACEMENTS } from '../src/negotiate/broker.js'
import { RESERVE_SLOW_MS } from '../src/negotiate/placement-negotiation.js'
import type { PeerClient } from '../src/negotiate/peer-client.js'
import { vmSpecFromWire } from '../src/vm/vm-spec-codec.js'

const GIB = 2 ** 30
const HOSTS = ['host-a', 'host-b', 'host-c']

function entry (hostId: string): HostEntry {
  const capacity = {
    total: { vcpus: 1024, memoryBytes: 1024 * GIB, diskBytes: 1024 * GIB },
    hostReserved: { vcpus: 0, memoryBytes: 0, diskBytes: 0 },
    allocated: { vcpus: 0, memoryBytes: 0, diskBytes: 0 },
    reservations: { vcpus: 0, memoryBytes: 0, diskBytes: 0 },
    overcommit: { cpu: 1, memory: 1, disk: 1 }
  }
  const advert: HostAdvert = { ...emptyAdvertContent(), hostId, incarnation: 1, seq: 1, addrs: [], sentAtMs: 0, heartbeatIntervalMs: 1000, capacity }
  return { hostId, advert, liveness: 'alive', lastHeardMs: 0, livenessSinceMs: 0, self: hostId === 'host-a' }
}

/** Peers that grant every claim and reservation, answering a Reserve after `reserveMs`. */
function peersAnsweringReserveIn (reserveMs: number): PeerClient {
  const negotiate = async (_host: string, req: meshvirt.v1.INegotiateRequest): Promise<meshvirt.v1.NegotiateResponse> => {
    if (req.claimName != null) return pb.NegotiateResponse.create({ nameClaim: { outcome: pb.NameClaim.Outcome.OUTCOME_GRANTED, vmId: req.claimName.vmId ?? '' } })
    if (req.reserve != null) {
      await new Promise((resolve) => setTimeout(resolve, reserveMs))
      return pb.NegotiateResponse.create({ reserved: { token: `t-${req.reserve.requestId ?? ''}` } })
    }
    if (req.commit != null) return pb.NegotiateResponse.create({ committed: { vm: { id: req.commit.vmId ?? '' } } })
    return pb.NegotiateResponse.create({})
  }
  return { negotiate } as unknown as PeerClient
}

function broker (peers: PeerClient): Broker {
  const view = { hosts: () => HOSTS.map(entry), get: (id: string) => entry(id) } as unknown as ClusterView
  return new Broker({ selfId: 'host-a', view, peers, log: silentLogger })
}

async function createMany (b: Broker, n: number, prefix: string): Promise<void> {
  await Promise.all(Array.from({ length: n }, async (_, i) => {
    await b.create(vmSpecFromWire({ name: `${prefix}-${i}`, resources: { vcpus: 1, memoryBytes: GIB, diskBytes: 0 }, boot: { kernel: '/sim/vmlinux' } }), `${prefix}-key-${i}`)
  }))
}

describe('broker back-pressure', () => {
  it('takes slow Reserve answers as congestion: it places fewer at once, and places them all', async () => {
    const b = broker(peersAnsweringReserveIn(RESERVE_SLOW_MS + 30))
    await createMany(b, 24, 'slow')
    expect(b.concurrency.limit).toBeLessThan(MAX_CONCURRENT_PLACEMENTS)
    expect(b.concurrency).toMatchObject({ running: 0, queued: 0 })
  })

  it('keeps its full width while Reserves are answered quickly', async () => {
    const b = broker(peersAnsweringReserveIn(1))
    await createMany(b, 24, 'quick')
    expect(b.concurrency.limit).toBe(MAX_CONCURRENT_PLACEMENTS)
  })
})
