import type { Hypervisor } from '@meshvirt/hypervisor'
import type { GroupPolicy } from '../ledger/group-policy.js'
import { driverSpec, validateVmSpec } from '../vm/vm-spec.js'
import type { VmSpec } from '../vm/vm-spec-codec.js'

/** Asks this host's driver whether it could start the spec; rejects with the driver's reason. */
export type CanStart = (spec: VmSpec) => Promise<void>

/**
 * The driver's `checkSpec` on the spec as `create` will get it. The id only names the VM's own
 * files, which do not exist yet: a placeholder checks the same paths and sizes.
 */
export function driverCanStart (hypervisor: Pick<Hypervisor, 'checkSpec'>): CanStart {
  return async (spec) => { await hypervisor.checkSpec(driverSpec('vm-reserve-check', spec)) }
}

/** Bound on the driver's check (path checks touch the filesystem). */
export const CAN_START_TIMEOUT_MS = 5_000

export type Admission =
  | { ok: true, policy?: GroupPolicy }
  | { ok: false, message: string }

/**
 * What a host checks of a new VM's spec at Reserve, before the ledger: the spec is valid (a bad
 * one is the broker's error, thrown), the driver could start it (else refused — nothing is
 * reserved), and its group rules, returned for the ledger to check in its transaction.
 */
export async function admitNewVm (spec: VmSpec, canStart: CanStart | undefined): Promise<Admission> {
  validateVmSpec(spec)
  if (canStart !== undefined) {
    try {
      await withTimeout(canStart(spec), CAN_START_TIMEOUT_MS)
    } catch (err) {
      return { ok: false, message: `this host's driver cannot start it: ${(err as Error).message}` }
    }
  }
  return { ok: true, policy: groupPolicyOf(spec) }
}

export function groupPolicyOf (spec: VmSpec): GroupPolicy {
  return { group: spec.group, affinity: [...spec.affinity], antiAffinity: [...spec.antiAffinity] }
}

async function withTimeout<T> (p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms) })])
  } finally {
    clearTimeout(timer)
  }
}
