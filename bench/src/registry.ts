import { gossip } from './gossip.js'
import type { Benchmark } from './harness.js'
import { vmStart } from './vm-start.js'
import { placementQuality } from './placement-quality.js'
import { migration } from './migration.js'
import { replication } from './replication.js'

/** Every benchmark, in the order `npm run bench` runs them. Each issue adds its own. */
export const BENCHMARKS: Benchmark[] = [placementQuality, vmStart, migration, replication, gossip]
