import type { BalanceOptions } from './balance-types.js'

/**
 * Defaults (docs/design.md, "Rebalancing"). A host acts when it is 5 utilisation points above the
 * cluster mean (DRS's default level 3 tolerates a moderate spread; at 10 points the balance bench
 * ends with a CV of 0.18, at 5 points 0.07 — the target is ≤ 0.10 — for 40 % more moves). A move
 * must close the source–target gap by 2 points (Proxmox's "the gain clears a margin"): less is a
 * migration for noise, and it keeps the reverse move from ever paying. CPU and memory weigh the
 * same (DRS balances both).
 */
export const BALANCE_DEFAULTS: Readonly<BalanceOptions> = Object.freeze({ threshold: 0.05, margin: 0.02, cpuWeight: 0.5 })
