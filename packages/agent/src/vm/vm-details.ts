import type { meshvirt } from '@meshvirt/proto'
import type { VmRow } from '../store/state-store.js'

/** What one part adds to a VM's VmInfo (`vm show`): migration progress, replicas and lag, the lease, restarts. */
export type VmDetail = (vm: VmRow) => Partial<meshvirt.v1.IVmInfo>

/**
 * The parts' contributions to what `vm show` tells of a VM the host owns. Made before the VM
 * manager and handed to it and to every part, so a part that has something to tell adds it when
 * it starts: nothing is set on the manager afterwards.
 */
export class VmDetails {
  private readonly parts: Array<{ name: string, detail: VmDetail }> = []

  add (name: string, detail: VmDetail): void {
    if (this.parts.some((p) => p.name === name)) throw new Error(`VM details '${name}' added twice`)
    this.parts.push({ name, detail })
  }

  /** The parts' fields for `vm`, in the order they were added (a later part's field wins). */
  of (vm: VmRow): Partial<meshvirt.v1.IVmInfo> {
    return Object.assign({}, ...this.parts.map((p) => p.detail(vm))) as Partial<meshvirt.v1.IVmInfo>
  }
}
