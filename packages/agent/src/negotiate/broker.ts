import type { meshvirt } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'
import { AdaptiveLimit, type LoadReport } from '../util/adaptive-limit.js'
import { validateVmSpec, vmIdFor } from '../vm/vm-spec.js'
import type { VmSpec } from '../vm/vm-spec-codec.js'
import { chooseCpuModel } from './cpu-model.js'
import { findGossipedVm } from './gossiped-vm.js'
import { nameAuthorities, nameHolders } from './name-authority.js'
import { NameClaims, nameTaken } from './name-claims.js'
import { PlacementNegotiation, type BrokerStats, type NegotiationDeps } from './placement-negotiation.js'
import type { SpecClaims } from './spec-claims.js'

/**
 * Placements this agent negotiates at once, at most; more wait their turn. The limit itself follows
 * the load (util/adaptive-limit.ts): a placement that met a peer too busy to answer in time halves
 * it, quiet ones grow it back. A storm of creates then queues at its brokers instead of flooding
 * every host with streams whose answers time out (docs/benchmarks.md, "Back-pressure at the broker").
 */
export const MAX_CONCURRENT_PLACEMENTS = 16
/** The least it shrinks to: one placement at a time still makes progress. */
export const MIN_CONCURRENT_PLACEMENTS = 1
/** Congestion seen by the placements in flight together is one signal: the limit halves at most this often. */
const PLACEMENT_LIMIT_COOLDOWN_MS = 1000

export interface BrokerDeps extends Omit<NegotiationDeps, 'stats'> {
  /** What a VM's spec claims cluster-wide before placement (its NICs' addresses: the features'). */
  claims?: SpecClaims
}

export interface BrokerResult {
  vm: meshvirt.v1.IVmInfo
  /** True when an earlier request with the same idempotency key had already created it. */
  existed: boolean
}

/**
 * Brokers a VM creation from this agent: claims the name at its authorities (name-claims.ts),
 * claims what the spec claims cluster-wide (its NICs' addresses), negotiates the placement
 * (placement-negotiation.ts), then binds the name to the owner, or releases it all on failure.
 * Placements run under an adaptive limit that follows the hosts' congestion.
 */
export class Broker {
  private readonly slots = new AdaptiveLimit({ min: MIN_CONCURRENT_PLACEMENTS, max: MAX_CONCURRENT_PLACEMENTS, cooldownMs: PLACEMENT_LIMIT_COOLDOWN_MS })
  readonly stats: BrokerStats = { placed: 0, failed: 0, attempts: 0, refusals: 0, refusedBy: {}, unreachable: 0 }

  private readonly names: NameClaims

  constructor (private readonly deps: BrokerDeps) {
    this.names = new NameClaims(deps)
  }

  /** `spec` as read at the edge (the control API's create); checked here, before anything is claimed. */
  async create (spec: VmSpec, idempotencyKey: string): Promise<BrokerResult> {
    validateVmSpec(spec)
    return await this.slots.run(async (load) => await this.createNow(spec, idempotencyKey, load))
  }

  /** Placements negotiating now, waiting for a slot, and the limit between them (for /metrics). */
  get concurrency (): { running: number, queued: number, limit: number } {
    return { running: this.slots.running, queued: this.slots.queued, limit: this.slots.limit }
  }

  private async createNow (spec: VmSpec, idempotencyKey: string, load: LoadReport): Promise<BrokerResult> {
    const name = spec.name
    const vmId = vmIdFor(idempotencyKey)
    // A retry of a request that already made its VM: the id derives from the key, so the
    // gossiped VM summaries answer it without asking anyone.
    const made = findGossipedVm(this.deps.view, (v) => v.id === vmId)
    if (made !== undefined) {
      const info = await this.deps.peers.control(made.owner, { hops: 1, inspectVm: { vm: { id: vmId } } })
      return { vm: info.vm as meshvirt.v1.IVmInfo, existed: true }
    }
    const gossiped = findGossipedVm(this.deps.view, (v) => v.name === name)
    if (gossiped !== undefined) throw nameTaken(name, gossiped.id, gossiped.owner)

    const authorities = nameAuthorities(name, nameHolders(this.deps.view))
    if (authorities.length === 0) throw new ControlError('UNAVAILABLE', 'no alive host in this agent\'s view')
    const { claimedAt, existing } = await this.names.claim(authorities, name, idempotencyKey, vmId, load)
    if (existing !== undefined) return existing

    const cpuModel = spec.cpuModel !== ''
      ? spec.cpuModel
      : chooseCpuModel(this.deps.view.hosts().filter((h) => h.liveness !== 'dead').map((h) => h.advert), !spec.notMigratable)
    spec = { ...spec, cpuModel }
    // What the spec claims cluster-wide (each NIC's address) is claimed before any host is asked: it moves with the VM.
    let hold: { claims: SpecClaims, held: unknown } | undefined
    try {
      if (this.deps.claims !== undefined) {
        const assigned = await this.deps.claims.assign(spec, vmId, idempotencyKey)
        spec = assigned.spec
        hold = { claims: this.deps.claims, held: assigned.held }
      } else if (spec.nics.length > 0) {
        throw new ControlError('INVALID_ARGUMENT', 'this agent has no networks: a VM with --net cannot be created through it')
      }
      const vm = await this.place(spec, vmId, idempotencyKey, load)
      await Promise.all([this.names.bindAt(claimedAt, { name, vmId, owner: vm.summary?.owner ?? '' }), hold?.claims.bind(hold.held)])
      return { vm, existed: false }
    } catch (err) {
      // A commit whose answer was lost may have happened: the name stays bound to that host, so a
      // retry asks it instead of placing the VM a second time elsewhere (issue 22, finding 1).
      const maybeOwner = (err as ControlError).details?.maybeOwner
      const maybe = maybeOwner !== undefined && maybeOwner !== ''
      await Promise.all([
        this.names.bindAt(claimedAt, maybe ? { name, vmId, owner: maybeOwner } : { name, vmId, release: true }),
        maybe ? hold?.claims.bind(hold.held) : hold?.claims.release(hold.held)
      ])
      throw err
    }
  }

  private async place (spec: VmSpec, vmId: string, key: string, load: LoadReport): Promise<meshvirt.v1.IVmInfo> {
    return await new PlacementNegotiation({ ...this.deps, stats: this.stats }, spec, vmId, key, load).run()
  }
}
