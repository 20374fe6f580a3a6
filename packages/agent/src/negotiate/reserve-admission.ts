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

/**
 * Bound on the driver's check (path checks touch the filesystem; milliseconds on a sane host). It
 * stays well under the broker's Reserve time-out (NEGOTIATE_TIMEOUT_MS, 5 s) so that a loaded host's
 * "too busy" reaches the broker as an answer; at 5 s both ran out together and the broker mostly
 * saw a time-out instead.
 */
export const CAN_START_TIMEOUT_MS = 3_000

export type Admission =
  | { ok: true, policy?: GroupPolicy }
  /** `busy`: the driver did not answer in time, which says nothing of the spec (a loaded host). */
  | { ok: false, message: string, busy?: true }

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
      if (err instanceof CheckTimeout) return { ok: false, busy: true, message: `this host is too busy to check the spec: its driver did not answer within ${CAN_START_TIMEOUT_MS} ms` }
      return { ok: false, message: `this host's driver cannot start it: ${(err as Error).message}` }
    }
  }
  return { ok: true, policy: groupPolicyOf(spec) }
}

export function groupPolicyOf (spec: VmSpec): GroupPolicy {
  return { group: spec.group, affinity: [...spec.affinity], antiAffinity: [...spec.antiAffinity] }
}

class CheckTimeout extends Error {}

async function withTimeout<T> (p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new CheckTimeout(`no answer within ${ms} ms`)), ms) })])
  } finally {
    clearTimeout(timer)
  }
}
