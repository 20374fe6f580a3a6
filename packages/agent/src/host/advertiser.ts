import type { HostAdvertContent, MeshNode, VmSummary } from '@meshvirt/mesh'
import type { AgentConfig } from '../config/agent-config.js'
import type { ResourceLedger } from '../ledger/resource-ledger.js'
import type { StateStore } from '../store/state-store.js'
import type { AgentEvents } from '../util/agent-events.js'
import type { HostAdminState } from './admin-state.js'
import { advertContent } from './advert-content.js'
import type { HostInventory } from './inventory.js'

/** Expired reservations are swept (and the advert refreshed) at least this often. */
export const LEDGER_SWEEP_MS = 1_000

export interface AdvertiserDeps {
  inventory: HostInventory
  config: AgentConfig
  store: StateStore
  ledger: ResourceLedger
  admin: HostAdminState
  events: AgentEvents
  /** The VMs this host owns and the replicas it holds, as the advert lists them. */
  vms: () => VmSummary[]
  /** The features' fields (networks: the networks this host knows and its underlay address). */
  features?: () => Partial<HostAdvertContent>
}

/**
 * This host's gossip advert: what it is, what it has handed out, its admin state and its VMs. It
 * follows every change the parts announce (ledger, VMs, admin state), rebuilt once per event-loop
 * turn — one placement touches the ledger and the VM table several times — and reservations that
 * expire on their own are swept, so the cluster hears of the room they free.
 */
export class Advertiser {
  private mesh: Pick<MeshNode, 'updateAdvert'> | undefined
  /** The rebuild queued for the end of this event-loop turn, if any. */
  private queued: NodeJS.Immediate | undefined
  /** Whether every change behind the queued rebuild is a hint (a sample: the next heartbeat carries it). */
  private queuedHint = false
  /** The NICs of this host's VMs as last published. */
  private nics = ''

  private sweep: NodeJS.Timeout | undefined
  private readonly unsubscribe: Array<() => void>

  constructor (private readonly deps: AdvertiserDeps) {
    const changed = (): void => { this.readvertise() }
    this.unsubscribe = [
      deps.events.on('ledger:changed', changed), deps.events.on('vm:changed', changed), deps.events.on('host:changed', changed),
      deps.events.on('features:changed', (d) => { this.readvertise(d.hint === true) })
    ]
  }

  /** The advert as it is now (the node starts with it). */
  content (): Partial<HostAdvertContent> {
    const { inventory, config, store, ledger, admin } = this.deps
    return {
      ...advertContent(inventory, { ...config, hostReserved: ledger.hostReserved() }, { allocated: store.allocated(), reservations: store.reserved() }, admin.get()),
      vms: this.deps.vms(),
      ...this.deps.features?.()
    }
  }

  /** From now on changes go to the node's advert; changes before were in its initial one. */
  attach (mesh: Pick<MeshNode, 'updateAdvert'>): void {
    this.mesh = mesh
    let lastReserved = JSON.stringify(this.deps.store.reserved())
    this.sweep = setInterval(() => {
      const now = JSON.stringify(this.deps.ledger.capacity().reservations)
      if (now !== lastReserved) { lastReserved = now; this.readvertise() }
    }, LEDGER_SWEEP_MS)
    this.sweep.unref()
  }

  readvertise (hint = false): void {
    if (this.mesh === undefined) return
    if (this.queued !== undefined) {
      this.queuedHint &&= hint
      return
    }
    this.queuedHint = hint
    this.queued = setImmediate(() => {
      this.queued = undefined
      // Stopped since it was queued: the store may be closed already.
      if (this.mesh === undefined) return
      const content = this.content()
      // NICs arriving or leaving this host are published at once: every host re-points its
      // forwarding when it hears (a migrated guest's blackout is its pause plus this).
      const nics = nicSignature(content.vms ?? [])
      const urgent = nics !== this.nics
      this.nics = nics
      this.mesh.updateAdvert(content, { urgent, hint: this.queuedHint })
    })
  }

  stop (): void {
    clearInterval(this.sweep)
    clearImmediate(this.queued)
    this.queued = undefined
    for (const off of this.unsubscribe) off()
    this.mesh = undefined
  }
}

/** Which NICs this host's advert lists (VM, epoch, MAC): a change is news for every host's forwarding. */
function nicSignature (vms: readonly VmSummary[]): string {
  return vms.filter((v) => v.nics.length > 0).map((v) => `${v.id}@${v.epoch}:${v.nics.map((n) => n.mac).join(',')}`).sort().join(';')
}
