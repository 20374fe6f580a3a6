import { abuse } from './abuse.js'
import { api } from './api.js'
import { balance } from './balance.js'
import { failover } from './failover.js'
import { gossip } from './gossip.js'
import { images } from './images.js'
import type { Benchmark } from './harness.js'
import { migration } from './migration.js'
import { monitorOverhead } from './monitor-overhead.js'
import { network } from './network.js'
import { placementQuality } from './placement-quality.js'
import { placementThroughput } from './placement-throughput.js'
import { replication } from './replication.js'
import { scaleModel } from './scale-model.js'
import { tunnel } from './tunnel.js'
import { vmStart } from './vm-start.js'

/** Every benchmark, in the order `npm run bench` runs them. Each issue adds its own. */
export const BENCHMARKS: Benchmark[] = [placementQuality, placementThroughput, gossip, vmStart, tunnel, migration, replication, failover, monitorOverhead, abuse, network, images, balance, api, scaleModel]
