import type { PlacementTiming } from '../negotiate/placement-negotiation.js'
import type { VmRow } from '../store/state-store.js'

/**
 * What the agent's parts tell each other, in this process. A part announces a change once; who
 * follows it (the advert, monitoring, the restarter, a benchmark) subscribes, instead of the
 * announcer holding a callback slot someone patches later.
 */
export interface AgentEventMap {
  /** The VMs this host owns, holds or receives changed (state, a new row, a removed one). */
  'vm:changed': Record<string, never>
  /** A VM row was committed here (a create's Commit). */
  'vm:committed': { vmId: string }
  /** A guest exited on its own (crash, kill from outside, power-off), as its owner saw it. */
  'guest:exited': { vm: VmRow, reason: string }
  /** The host's ledger changed (allocations, reservations, the host's reserve). */
  'ledger:changed': Record<string, never>
  /** The operator changed the host's admin state (active, draining, drained). */
  'host:changed': Record<string, never>
  /**
   * A feature's fields of the advert changed (networks: one created, deleted, or heard of).
   * `hint`: a sample nobody acts on at once (load, measured use): it rides the next heartbeat.
   */
  'features:changed': { hint?: boolean }
  /** An image was fetched here (for `vmId` when a VM needed it), or could not be (`error`). */
  'image:fetched': { digest: string, ref: string, sizeBytes: number, ms: number, vmId: string, error?: string, repairedChunks?: number }
  /** A placement this host brokered was committed, with its timing. */
  'placement:done': PlacementTiming
}

export type AgentEventName = keyof AgentEventMap
type Listener<K extends AgentEventName> = (detail: AgentEventMap[K]) => void

/**
 * A typed, synchronous event target. Listeners run in order of subscription; one that throws is
 * reported through `onListenerError` and does not stop the others or the emitter.
 */
export class AgentEvents {
  private readonly listeners = new Map<AgentEventName, Array<Listener<never>>>()

  constructor (private readonly onListenerError: (event: AgentEventName, err: unknown) => void = () => {}) {}

  /** Subscribes; returns the unsubscribe. */
  on<K extends AgentEventName>(event: K, listener: Listener<K>): () => void {
    const list = this.listeners.get(event) ?? []
    list.push(listener as Listener<never>)
    this.listeners.set(event, list)
    return () => {
      const now = this.listeners.get(event) ?? []
      const i = now.indexOf(listener as Listener<never>)
      if (i >= 0) now.splice(i, 1)
    }
  }

  emit<K extends AgentEventName>(event: K, detail: AgentEventMap[K]): void {
    for (const listener of [...this.listeners.get(event) ?? []]) {
      try {
        (listener as Listener<K>)(detail)
      } catch (err) {
        this.onListenerError(event, err)
      }
    }
  }

  /** How many listeners follow `event` (tests and leak checks). */
  count (event: AgentEventName): number {
    return this.listeners.get(event)?.length ?? 0
  }
}
