import { pb } from '@meshvirt/proto'
import type { VmRow } from '../store/state-store.js'

/** What the owner does when a guest exits without being asked (`vm create --restart`). */
export type RestartPolicy = 'never' | 'on-crash' | 'always'

export const RESTART_POLICIES: readonly RestartPolicy[] = ['never', 'on-crash', 'always']
export const DEFAULT_RESTART_POLICY: RestartPolicy = 'on-crash'

/** The first restart waits this long; each further one in a row doubles it (systemd's RestartSec, Kubernetes' CrashLoopBackOff). */
export const RESTART_BACKOFF_BASE_MS = 250
/** The longest wait between restarts of a guest that keeps crashing. */
export const RESTART_BACKOFF_MAX_MS = 60_000
/** A guest that ran this long before it exited starts its back-off afresh (as Kubernetes does after 10 min; shorter here). */
export const RESTART_RESET_AFTER_MS = 60_000

/** How the guest's QEMU ended, from the driver's exit reason. */
export type ExitKind = 'crashed' | 'powered-off' | 'migrated'

export interface GuestExit {
  policy: RestartPolicy
  /** The driver's exit reason (hypervisor ExitReason). */
  reason: string
  /** Restarts in a row so far (reset once a guest runs for RESTART_RESET_AFTER_MS). */
  restartsInARow: number
  /** How long the guest ran before this exit (0: unknown). */
  ranForMs: number
}

export type RestartDecision =
  | { restart: false, why: string }
  | { restart: true, delayMs: number, attempt: number, why: string }

/** A powered-off guest asked for it; anything else that ended QEMU unasked (a signal, a crash, the OOM killer) is a crash. */
export function exitKind (reason: string): ExitKind {
  if (reason === 'guest-shutdown') return 'powered-off'
  if (reason === 'migrated') return 'migrated'
  return 'crashed'
}

/** base × 2^(attempt−1), capped: 250 ms, 500 ms, 1 s, 2 s … 60 s. `attempt` counts from 1. */
export function restartBackoffMs (attempt: number, baseMs = RESTART_BACKOFF_BASE_MS, maxMs = RESTART_BACKOFF_MAX_MS): number {
  const n = Math.max(1, Math.floor(attempt))
  return Math.min(maxMs, baseMs * 2 ** Math.min(n - 1, 30))
}

/** Whether and when the owner starts a guest again after it exited on its own. Pure. */
export function restartDecision (e: GuestExit): RestartDecision {
  const kind = exitKind(e.reason)
  if (kind === 'migrated') return { restart: false, why: 'the guest moved to another host' }
  if (e.policy === 'never') return { restart: false, why: `restart policy never: the guest stays ${kind === 'crashed' ? 'crashed' : 'off'}` }
  if (kind === 'powered-off' && e.policy !== 'always') return { restart: false, why: 'the guest powered itself off (restart policy on-crash restarts only crashes)' }
  const inARow = e.ranForMs >= RESTART_RESET_AFTER_MS ? 0 : Math.max(0, e.restartsInARow)
  const attempt = inARow + 1
  const delayMs = restartBackoffMs(attempt)
  return { restart: true, delayMs, attempt, why: `${kind === 'crashed' ? `its QEMU exited (${e.reason})` : 'it powered itself off'}, restart policy ${e.policy}: attempt ${attempt} after ${delayMs} ms` }
}

const TO_WIRE: Record<RestartPolicy, number> = {
  never: pb.RestartPolicy.RESTART_POLICY_NEVER,
  'on-crash': pb.RestartPolicy.RESTART_POLICY_ON_CRASH,
  always: pb.RestartPolicy.RESTART_POLICY_ALWAYS
}

export function restartPolicyToWire (p: RestartPolicy): number {
  return TO_WIRE[p]
}

/** Unset (an older client, or no flag) is the default, on-crash. */
export function restartPolicyFromWire (n: number | null | undefined): RestartPolicy {
  const found = (Object.entries(TO_WIRE) as Array<[RestartPolicy, number]>).find(([, v]) => v === n)
  return found?.[0] ?? DEFAULT_RESTART_POLICY
}

/** A guest found gone at recovery that its restart policy (never) keeps down. */
export function staysDown (vm: VmRow): boolean {
  return vm.desired === 'running' && (vm.state === 'running' || vm.state === 'crashed') && vm.spec.restart === 'never'
}
