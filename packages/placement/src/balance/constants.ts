import type { BalanceOptions } from './balance-types.js'

/**
 * Defaults (docs/design.md, "Rebalancing"). 0.10 above the mean is DRS's level-3 tolerance in
 * spirit: a host a tenth of its size busier than its peers is worth one migration, less is noise
 * that a single VM of a typical size could not fix anyway. A move must close the source–target gap
 * by 2 points (Proxmox's "gain clears a margin"): smaller moves cost a migration for nothing.
 * CPU and memory weigh the same (DRS balances both).
 */
export const BALANCE_DEFAULTS: Readonly<BalanceOptions> = Object.freeze({ threshold: 0.1, margin: 0.02, cpuWeight: 0.5 })
