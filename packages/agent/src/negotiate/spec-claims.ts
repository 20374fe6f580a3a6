import type { VmSpec } from '../vm/vm-spec-codec.js'

/**
 * What a VM's spec comes to hold cluster-wide (its addresses): claimed by the broker before any host
 * is asked, bound once the VM is placed, released when it is not. `T` is what is held meanwhile.
 */
export interface SpecClaims<T = unknown> {
  /** The spec completed (an address filled in), and what now holds it. */
  assign (spec: VmSpec, vmId: string, idempotencyKey: string): Promise<{ spec: VmSpec, held: T }>
  bind (held: T): Promise<void>
  release (held: T): Promise<void>
}
