import type { ClusterView } from '@meshvirt/mesh'
import { placeReplicaSet } from '@meshvirt/placement'
import { pb } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'
import type { Logger } from '../log/logger.js'
import { toHostSnapshot } from '../negotiate/host-snapshot.js'
import type { PeerClient } from '../negotiate/peer-client.js'
import { placementRequestFor } from '../negotiate/placement-request.js'
import type { ReplicaRecords } from '../store/replica-records.js'
import type { VmRow } from '../store/state-store.js'
import { vmSpecToWire, type VmSpec } from '../vm/vm-spec-codec.js'
import { holderRequest } from './replica-plan.js'

export interface HolderRecruiterDeps {
  selfId: string
  view: ClusterView
  peers: PeerClient
  records: ReplicaRecords
  log: Logger
  clock: () => number
  /** Reserve → HoldReplica must complete within this. */
  reservationTtlMs: number
}

/**
 * `count` more holders for a VM this host owns: placement in distinct failure domains (never the
 * owner's, never a current holder's), a Reserve of the disk only (role REPLICA) on each, then
 * HoldReplica with the spec and the group; falls back along the ranking when a host refuses.
 * Each holder placed is recorded at once; throws NO_CAPACITY (saying why) when fewer were placed.
 */
export async function recruitHolders (deps: HolderRecruiterDeps, vm: VmRow, spec: VmSpec, current: string[], count: number): Promise<void> {
  const { view, peers, selfId, records, log, clock } = deps
  const spreadBy = spec.spreadBy
  const diskBytes = spec.resources.diskBytes
  const domainOf = (id: string): string | undefined => spreadBy === '' ? undefined : view.get(id)?.advert.labels[spreadBy]
  const takenDomains = [selfId, ...current].map(domainOf).filter((d): d is string => d !== undefined)
  const request = holderRequest(placementRequestFor(spec, vm.id), {
    diskBytes, wanted: count, spreadBy, ownerId: selfId, holders: current, takenDomains, avoid: [], seed: `${vm.id}/replicas/${vm.epoch}/${current.join(',')}`
  })
  const result = placeReplicaSet(request, view.hosts().map((h) => toHostSnapshot(h)))
  if (result.hosts.length === 0) throw new ControlError('NO_CAPACITY', `no host for a replica of ${vm.name}: ${result.summary}`)
  // The chosen host of each domain first, then the other hosts of the candidates, in rank order.
  const order = [...result.hosts, ...result.candidates.filter((c) => !result.hosts.includes(c))]
  const usedDomains = new Set(takenDomains)
  let placed = 0
  const errors: string[] = []
  for (const candidate of order) {
    if (placed >= count) break
    const domain = domainOf(candidate.hostId)
    if (domain !== undefined && usedDomains.has(domain)) continue
    const holders = [...current, candidate.hostId]
    try {
      const reserved = await peers.negotiate(candidate.hostId, {
        reserve: { requestId: `${vm.id}/replica/${vm.epoch}/${candidate.hostId}/${clock()}`, brokerId: selfId, resources: { vcpus: 0, memoryBytes: 0, diskBytes }, ttlMs: deps.reservationTtlMs, vmId: vm.id, epoch: vm.epoch, role: pb.VmRole.VM_ROLE_REPLICA }
      })
      if (reserved.reserved == null) { errors.push(`${candidate.host.hostname ?? candidate.hostId}: ${reserved.refused?.message ?? 'refused'}`); continue }
      await peers.negotiate(candidate.hostId, { holdReplica: { token: reserved.reserved.token, vmId: vm.id, epoch: vm.epoch, spec: vmSpecToWire(spec), holders } })
      records.addHolder(vm.id, candidate.hostId, clock())
      current.push(candidate.hostId)
      if (domain !== undefined) usedDomains.add(domain)
      placed++
      log.info('replica holder placed', { vm: vm.id, peer: candidate.hostId, hostname: candidate.host.hostname, domain })
    } catch (err) {
      errors.push(`${candidate.host.hostname ?? candidate.hostId}: ${(err as Error).message}`)
    }
  }
  if (placed < count) throw new ControlError('NO_CAPACITY', `placed ${placed} of ${count} replica holders for ${vm.name}: ${[result.complete ? '' : result.summary, ...errors].filter((e) => e !== '').join('; ')}`)
}
