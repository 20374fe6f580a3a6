import { BALANCE_DEFAULTS, type BalanceOptions } from '@meshvirt/placement'

/** How often and how patiently each host balances (docs/design.md, "Rebalancing"). */
export interface BalanceTimings {
  /** A balance round: this host re-reads the view and decides. */
  intervalMs: number
  /** Above the threshold this long (every round in between) before it acts: one busy minute is not a trend. */
  holdMs: number
  /** After a move (or a recommendation), this long before the next: the adverts settle, the moved VM is measured on its new host. */
  cooldownMs: number
  /** Per-VM usage sampling (CPU time and RSS from the hypervisor). */
  sampleMs: number
}

export type BalanceKnobs = BalanceOptions & BalanceTimings

/**
 * DRS evaluates every 5 minutes by default (1–5), Proxmox balances over several rounds: a host
 * checks every 30 s and acts after 2 minutes above the threshold, then waits 2 minutes — long
 * enough for the new owner to measure the VM and both adverts to spread (seconds), short enough that
 * a loaded host sheds a VM every couple of minutes.
 */
export const BALANCE_TIMINGS: Readonly<BalanceTimings> = Object.freeze({ intervalMs: 30_000, holdMs: 120_000, cooldownMs: 120_000, sampleMs: 15_000 })

export function resolveKnobs (over: Partial<BalanceKnobs> = {}): BalanceKnobs {
  return { ...BALANCE_DEFAULTS, ...BALANCE_TIMINGS, ...over }
}
