import type { ClusterView, HostAdvertContent, MeshNode } from '@meshvirt/mesh'
import type { AgentConfig } from '../config/agent-config.js'
import type { Handler } from '../control/control-handler.js'
import type { Logger } from '../log/logger.js'
import type { BaseImages } from '../replica/base-images.js'
import type { PeerClient } from '../negotiate/peer-client.js'
import type { SpecClaims } from '../negotiate/spec-claims.js'
import type { StateStore, VmRow } from '../store/state-store.js'
import type { AgentEvents } from '../util/agent-events.js'
import type { Teardown } from '../util/teardown.js'
import type { VmDetail, VmDetails } from '../vm/vm-details.js'
import type { VmResource } from '../vm/vm-preparation.js'

/** What a feature is built from: the host's core, before the mesh starts. */
export interface FeatureContext {
  selfId: string
  config: AgentConfig
  root: Logger
  store: StateStore
  events: AgentEvents
  teardown: Teardown
  /** This host's VM rows (the VM manager is built after the features: read lazily). */
  localVms: () => VmRow[]
}

/** The mesh, once it runs: what a feature follows and talks to. */
export interface FeatureMesh {
  selfId: string
  view: ClusterView
  peers: PeerClient
  /** Its own protocols (images: the chunk protocol). */
  node: Pick<MeshNode, 'handle' | 'unhandle' | 'request'>
}

/**
 * A feature of the agent (networks, images): what it adds to the core, each hook optional.
 * startAgent registers a feature in one line; the core calls its hooks at their moments. A feature
 * announces a change of its advert fields with the `features:changed` event.
 */
export interface AgentFeature {
  readonly name: string
  /** Made ready before a guest exists on this host, released when it leaves (in registration order). */
  readonly vmResources?: readonly VmResource[]
  /** What it tells of a VM this host owns in `vm show` (parts/VmDetails). */
  vmDetail?: VmDetail
  /** Its fields of this host's advert. */
  advert?: () => Partial<HostAdvertContent>
  /** For a cluster-wide key it owns (`ip:…`): the VM the gossip says holds it; name authorities then refuse it to others. */
  keyUser?: (key: string) => string | undefined
  /** The mesh is up: follow the view. */
  attach?: (mesh: FeatureMesh) => void | Promise<void>
  /** What it claims for a VM before placement (read after attach). */
  specClaims?: () => SpecClaims | undefined
  /** Where replicas held here get the library images their full points are layers on (images). */
  replicaBases?: BaseImages
  /** Control request bodies it answers, by oneof name. */
  handlers?: () => Record<string, Handler>
  /** A VM was deleted by its owner: free what it held cluster-wide. */
  vmDeleted?: (vm: VmRow) => Promise<void>
  /** A VM was deleted by force (its owner dead): free what its owner last gossiped it held. */
  vmForceDeleted?: (vmId: string) => Promise<void>
}

interface Held { claims: SpecClaims, held: unknown }

/** The registered features, seen by the core as one: each hook runs over all of them, in order. */
export class Features {
  constructor (private readonly list: readonly AgentFeature[]) {}

  vmResources (): VmResource[] {
    return this.list.flatMap((f) => [...f.vmResources ?? []])
  }

  /** Adds each feature's `vm show` fields under its name. */
  addDetails (details: VmDetails): void {
    for (const f of this.list) if (f.vmDetail !== undefined) details.add(f.name, f.vmDetail)
  }

  advert (): Partial<HostAdvertContent> {
    return Object.assign({}, ...this.list.map((f) => f.advert?.() ?? {})) as Partial<HostAdvertContent>
  }

  /** The first feature's source of replicas' base images (the image library), if one offers it. */
  replicaBases (): BaseImages | undefined {
    return this.list.find((f) => f.replicaBases !== undefined)?.replicaBases
  }

  keyUser (key: string): string | undefined {
    for (const f of this.list) {
      const user = f.keyUser?.(key)
      if (user !== undefined) return user
    }
    return undefined
  }

  async attach (mesh: FeatureMesh): Promise<void> {
    for (const f of this.list) await f.attach?.(mesh)
  }

  handlers (): Record<string, Handler> {
    return Object.assign({}, ...this.list.map((f) => f.handlers?.() ?? {})) as Record<string, Handler>
  }

  async vmDeleted (vm: VmRow): Promise<void> {
    for (const f of this.list) await f.vmDeleted?.(vm)
  }

  async vmForceDeleted (vmId: string): Promise<void> {
    for (const f of this.list) await f.vmForceDeleted?.(vmId)
  }

  /**
   * Every feature's claims in turn; one failing gives back what those before it took. Each feature
   * is asked for its claims at every create, not once: one only has them after attach.
   */
  specClaims (): SpecClaims<Held[]> {
    const parts = (): SpecClaims[] => this.list.flatMap((f) => { const c = f.specClaims?.(); return c === undefined ? [] : [c] })
    const release = async (held: Held[]): Promise<void> => { await Promise.all(held.map(async (h) => { await h.claims.release(h.held) })) }
    return {
      assign: async (spec, vmId, idempotencyKey) => {
        const held: Held[] = []
        try {
          for (const claims of parts()) {
            const got = await claims.assign(spec, vmId, idempotencyKey)
            spec = got.spec
            held.push({ claims, held: got.held })
          }
        } catch (err) {
          await release(held)
          throw err
        }
        return { spec, held }
      },
      bind: async (held) => { await Promise.all(held.map(async (h) => { await h.claims.bind(h.held) })) },
      release
    }
  }
}
