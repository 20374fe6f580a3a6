import type { PlacementRequest } from '@meshvirt/placement'
import { pb } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'

/** Refusals that come from what only the host knows: its driver, its own members of a group. */
const HOST_ONLY: ReadonlySet<number> = new Set([
  pb.RefuseReason.REFUSE_REASON_DRIVER,
  pb.RefuseReason.REFUSE_REASON_ANTI_AFFINITY,
  pb.RefuseReason.REFUSE_REASON_ANTI_AFFINITY_RESERVED,
  pb.RefuseReason.REFUSE_REASON_AFFINITY
])

/**
 * One placement's record of the hosts that refused a VM for reasons gossip cannot show (a
 * capacity refusal is different: its fresh capacity re-ranks the host). They are excluded from
 * the rest of this placement, and a placement that fails says what they said.
 */
export class HostRefusals {
  private readonly byHost = new Map<string, { reason: number, message: string }>()
  /** Hosts that refused only for another member's reservation, which may yet lapse. */
  private readonly held = new Set<string>()
  /** Hosts too busy to answer (OVERLOADED): asked again in a later round, and named if all fails. */
  private readonly busy = new Map<string, string>()

  note (host: string, reason: number | null | undefined, message: string): void {
    if (reason === pb.RefuseReason.REFUSE_REASON_OVERLOADED) this.busy.set(host, message)
    else this.busy.delete(host)
    if (reason == null || !HOST_ONLY.has(reason)) return
    this.byHost.set(host, { reason, message })
    if (reason === pb.RefuseReason.REFUSE_REASON_ANTI_AFFINITY_RESERVED) this.held.add(host)
    else this.held.delete(host)
  }

  /**
   * When nothing else is left: forgets the hosts held only by reservations (so they are asked
   * again) and says whether there were any. A reservation whose broker died or lost its answer
   * lapses or is released; a host left empty by it would otherwise never get a member.
   */
  retryHeld (): boolean {
    if (this.held.size === 0) return false
    for (const host of this.held) this.byHost.delete(host)
    this.held.clear()
    return true
  }

  /** Whether a host refused only for being too busy to answer (worth asking again later). */
  anyBusy (): boolean {
    return this.busy.size > 0
  }

  exclude (request: PlacementRequest): PlacementRequest {
    if (this.byHost.size === 0) return request
    return { ...request, exclude: [...(request.exclude ?? []), ...this.byHost.keys()] }
  }

  /**
   * The error a failed placement throws. When hosts refused the VM for their driver only, the
   * spec itself is what no host can start: DRIVER_REFUSED with the first host's reason.
   */
  error (vm: string, why: string, attempts: number): ControlError {
    const details = { attempts: String(attempts) }
    if (this.byHost.size === 0 && this.busy.size > 0) {
      // Room may well remain: the hosts were too loaded to say. Not the spec's fault, nor capacity's.
      const first = [...this.busy.values()][0] ?? ''
      return new ControlError('RESOURCE_EXHAUSTED', `VM ${vm} not placed: ${this.busy.size} host(s) too busy to answer (${first}); nothing was created: retry later`, { ...details, busy: String(this.busy.size) })
    }
    if (this.byHost.size === 0) return new ControlError('NO_CAPACITY', why, details)
    const said = [...this.byHost.values()]
    const driver = said.filter((r) => r.reason === pb.RefuseReason.REFUSE_REASON_DRIVER)
    if (driver.length === said.length) {
      const busy = this.busy.size > 0 ? `; ${this.busy.size} more too busy to answer` : ''
      return new ControlError('DRIVER_REFUSED', `no host can start VM ${vm}: ${said.length} refused it at Reserve (${driver[0]?.message ?? ''})${busy}; change the spec`, { ...details, refusals: String(said.length) })
    }
    const first = said.find((r) => r.reason !== pb.RefuseReason.REFUSE_REASON_DRIVER)
    return new ControlError('NO_CAPACITY', `${why}; ${said.length} host(s) refused it at Reserve (${first?.message ?? ''})`, { ...details, refusals: String(said.length) })
  }
}
