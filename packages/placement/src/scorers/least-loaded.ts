import type { HostScorer } from '../host-scorer.js'

/**
 * Measured CPU utilisation, which the ledger cannot see: overcommitted vCPUs that are busy. A host
 * that reports no load scores as idle rather than being punished for an old agent.
 */
export const leastLoadedScorer: HostScorer = {
  name: 'least-loaded',
  prepare: () => (host) => {
    const u = host.load?.cpuUtilization ?? 0
    return 1 - Math.min(1, Math.max(0, Number.isFinite(u) ? u : 0))
  }
}
