import type { execa as Execa } from 'execa'

let loading: Promise<typeof Execa> | undefined

/**
 * execa, loaded on the first command this package runs rather than with the package: its ~260
 * modules cost every agent several MB of heap although an agent that runs no command (simulated
 * drivers, a host without guests yet) never needs them.
 */
export async function loadExeca (): Promise<typeof Execa> {
  loading ??= import('execa').then((m) => m.execa)
  return await loading
}
