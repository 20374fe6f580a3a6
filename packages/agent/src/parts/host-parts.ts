import type { Hypervisor } from '@meshvirt/hypervisor'
import type { MeshNode } from '@meshvirt/mesh'
import type { AgentConfig } from '../config/agent-config.js'
import type { AgentLease } from '../failover/agent-lease.js'
import type { LeaseService } from '../lease/lease-service.js'
import type { ResourceLedger } from '../ledger/resource-ledger.js'
import type { Logger } from '../log/logger.js'
import type { PeerClient } from '../negotiate/peer-client.js'
import type { LeaseRecords } from '../store/lease-records.js'
import type { BaseImages } from '../replica/base-images.js'
import type { ReplicaRecords } from '../store/replica-records.js'
import type { StateStore } from '../store/state-store.js'
import type { AgentEvents } from '../util/agent-events.js'
import type { Teardown } from '../util/teardown.js'
import type { VmManager } from '../vm/vm-manager.js'
import type { VmPreparation } from '../vm/vm-preparation.js'
import type { VmDetails } from '../vm/vm-details.js'

/** The lease of replicated VMs, once failover has started: parts built before it reach it through this. */
export interface LeaseRef { current?: { service: LeaseService, hooks: AgentLease } }

/**
 * What every optional part of an agent (migration, replication, failover) is built over: the host's
 * core, already running. A part adds its stops to `teardown` as it starts them, so a start-up that
 * fails later, and a normal stop, stop it in reverse order.
 */
export interface HostParts {
  selfId: string
  config: AgentConfig
  /** The agent's root logger: a part logs under its own component. */
  root: Logger
  store: StateStore
  ledger: ResourceLedger
  leases: LeaseRecords
  records: ReplicaRecords
  vms: VmManager
  /** The one path by which a VM comes to exist here (create, incoming migration, promotion). */
  preparation: VmPreparation
  /** Where a part adds what it tells of a VM in `vm show`. */
  details: VmDetails
  hypervisor: Hypervisor
  node: MeshNode
  peers: PeerClient
  events: AgentEvents
  teardown: Teardown
  lease: LeaseRef
  /** Where replicas held here get the library images their full points are layers on (a feature's). */
  replicaBases?: BaseImages
}
