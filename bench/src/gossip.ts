/**
 * `npm run bench -- gossip`: capacity gossip and liveness at N = 10, 50, 100 hosts in one
 * process over loopback TCP (LAN timing preset); 11 idle `meshvirt agent` processes (an agent's
 * memory and CPU); one bare mesh host as its own process beside 10 in-process peers (what the
 * mesh alone costs); and N = 100 mesh host processes (convergence across event loops, failure
 * detection after SIGKILL, the traffic each host receives idle and under churn).
 * `MESHVIRT_BENCH_GOSSIP=idle` runs only the idle agent processes (agent_rss_mb,
 * agent_idle_cpu_pct), `MESHVIRT_BENCH_GOSSIP=processes` only the N = 100 processes: for work on
 * one part, recorded beside the full run (gossip-idle.json, gossip-processes.json).
 */
import { generateClusterKey, heartbeatIntervalMs, LAN_TIMING, type MeshTiming } from '@meshvirt/mesh'
import { percentile, type Benchmark, type Metric } from './harness.js'
import { InProcessCluster, sleep } from './gossip-cluster.js'
import { AgentProcess, ClusterStartError, ProcessCluster } from './gossip-processes.js'
import { agentIdle, unitEnvironment, type AgentIdleFigures } from './agent-idle.js'

/** Let meshes form and the join-time re-publishing die down before measuring. */
const SETTLE_MS = 3_000
const IDLE_WINDOW_MS = 5_000
/** Generous: LAN detection is ~3–4 s; a miss here means the detector is broken. */
const DETECTION_TIMEOUT_MS = 20_000
const MB = 2 ** 20
/**
 * In one process every host shares one core, so the process receives N× what a real host
 * does. Heartbeats are spaced so the whole process handles ~150 per second (a real LAN host
 * takes up to 100/s); changes and failure notices do not wait for heartbeats, so convergence
 * and detection are measured as they would be, only on a busier core.
 */
const PROCESS_HEARTBEATS_PER_S = 150
/** Beyond this the rounds start anyway (a host that missed a heartbeat learns the source from the change). */
const FULL_VIEW_TIMEOUT_MS = 90_000
/** Hosts join 100 ms apart (50 hosts in 5 s), not as one crowd on one core. */
const JOIN_STAGGER_MS = 100
const inProcessTiming = (n: number): Partial<MeshTiming> => ({ ...LAN_TIMING, maxAdvertsPerSecond: PROCESS_HEARTBEATS_PER_S / n })

interface Plan { n: number, rounds: number, kills: number }

const FULL: Plan[] = [{ n: 10, rounds: 60, kills: 2 }, { n: 50, rounds: 100, kills: 3 }, { n: 100, rounds: 20, kills: 1 }]
const QUICK: Plan[] = [{ n: 10, rounds: 30, kills: 1 }, { n: 50, rounds: 40, kills: 1 }]
/** Separate processes: plus the traffic windows (idle, then with `restarts` hosts SIGKILLed and replaced). */
interface ProcessPlan extends Plan { trafficMs: number, restarts: number }
const PROCESS_PLAN: Record<'full' | 'quick', ProcessPlan> = {
  full: { n: 100, rounds: 40, kills: 3, trafficMs: 30_000, restarts: 5 },
  quick: { n: 8, rounds: 20, kills: 1, trafficMs: 10_000, restarts: 1 }
}
/**
 * 100 processes share 2 cores here: at the LAN preset's 100 heartbeats a second per host they
 * would need ~10 cores for heartbeats alone. Heartbeats are spaced so the machine receives about
 * as many as the one-process runs handle (changes and failure notices do not wait for heartbeats).
 */
const PROCESS_HEARTBEATS_PER_HOST_S = 2
const RSS_PEERS = 10
const IDLE_AGENTS = 11
const IDLE_WINDOW_AGENTS_MS = 60_000
const JOIN_TIMEOUT_MS = 30_000

const round1 = (x: number): number => Math.round(x * 10) / 10
type Traffic = Awaited<ReturnType<ProcessCluster['measureTraffic']>>
const median = (xs: number[]): number => percentile(xs, 50)

interface IdleRuns { unit: AgentIdleFigures, bare: AgentIdleFigures, unitEnv: Record<string, string> }

/**
 * Idle agents twice: as the systemd unit runs them (its environment: the metric keys), then as a
 * bare `meshvirt agent` (the `_bare` keys), so what the unit's environment buys stays visible.
 */
async function idleRuns (quick: boolean, log: (line: string) => void): Promise<IdleRuns> {
  const windowMs = quick ? IDLE_WINDOW_AGENTS_MS / 3 : IDLE_WINDOW_AGENTS_MS
  const unitEnv = unitEnvironment()
  return { unit: await agentIdle(IDLE_AGENTS, windowMs, log, unitEnv), bare: await agentIdle(IDLE_AGENTS, windowMs, log, {}), unitEnv }
}

function idleMetrics (idle: IdleRuns): Record<string, Metric> {
  return {
    agent_rss_mb: { value: round1(idle.unit.rssMbMean), unit: 'MB', target: '< 90' },
    agent_idle_cpu_pct: { value: round1(idle.unit.cpuPctMean * 10) / 10, unit: '%', target: '< 1' },
    agent_rss_mb_bare: { value: round1(idle.bare.rssMbMean), unit: 'MB' },
    agent_idle_cpu_pct_bare: { value: round1(idle.bare.cpuPctMean * 10) / 10, unit: '%' }
  }
}

function processMetrics (p: ProcessRun | ProcessStartFailure): Record<string, Metric> {
  const metrics: Record<string, Metric> = {}
  const sfx = `${p.n}_processes`
  if ('error' in p) {
    // Nothing measured past the start: the keys with targets stay absent rather than made up.
    metrics[`ready_of_${sfx}`] = { value: p.ready, unit: 'processes' }
    metrics[`cores_busy_${p.ready}_processes`] = { value: Math.round(p.coresBusy * 100) / 100, unit: 'cores' }
    return metrics
  }
  metrics[`convergence_p99_ms_${sfx}`] = { value: round1(p.convergenceP99Ms), unit: 'ms', ...(p.n === 100 ? { target: '< 300' } : {}) }
  if (p.detectionP50S !== undefined) metrics[`failure_detection_s_${sfx}`] = { value: round1(p.detectionP50S * 10) / 10, unit: 's', ...(p.n === 100 ? { target: '< 5' } : {}) }
  metrics[`kb_per_host_s_idle_${sfx}`] = { value: round1(p.idle.bytesPerHostS / 1024), unit: 'KB/s' }
  metrics[`adverts_per_host_s_idle_${sfx}`] = { value: round1(p.idle.advertsPerHostS), unit: '1/s' }
  metrics[`kb_per_host_s_churn_${sfx}`] = { value: round1(p.churn.bytesPerHostS / 1024), unit: 'KB/s' }
  metrics[`adverts_per_host_s_churn_${sfx}`] = { value: round1(p.churn.advertsPerHostS), unit: '1/s' }
  metrics[`notices_per_host_s_churn_${sfx}`] = { value: round1(p.churn.noticesPerHostS * 100) / 100, unit: '1/s' }
  return metrics
}

export const gossip: Benchmark = {
  name: 'gossip',
  description: 'capacity-change convergence, failure detection, CPU and RSS of mesh hosts over loopback',
  async run ({ quick, log }) {
    const metrics: Record<string, Metric> = {}
    const details: Record<string, unknown> = { timing: LAN_TIMING, inProcess: {}, processes: {} }
    if (process.env.MESHVIRT_BENCH_GOSSIP === 'idle') {
      const idle = await idleRuns(quick, log)
      return { metrics: idleMetrics(idle), details: { agentIdle: idle.unit, agentIdleBare: idle.bare, unitEnvironment: idle.unitEnv }, variant: 'idle' }
    }
    if (process.env.MESHVIRT_BENCH_GOSSIP === 'processes') {
      const p = await separateProcesses(quick ? PROCESS_PLAN.quick : PROCESS_PLAN.full, log)
      return { metrics: processMetrics(p), details: { timing: LAN_TIMING, processes: { [String(p.n)]: p } }, variant: 'processes' }
    }

    for (const plan of quick ? QUICK : FULL) {
      const r = await inProcess(plan, log)
      ;(details.inProcess as Record<string, unknown>)[String(plan.n)] = r
      const suffix = plan.n === 50 ? { target: '< 300' } : {}
      metrics[`convergence_p50_ms_${plan.n}`] = { value: round1(r.convergenceP50Ms), unit: 'ms' }
      metrics[`convergence_p99_ms_${plan.n}`] = { value: round1(r.convergenceP99Ms), unit: 'ms', ...suffix }
      if (r.detectionP50S !== undefined) {
        metrics[`failure_detection_s_${plan.n}`] = { value: round1(r.detectionP50S * 10) / 10, unit: 's', ...(plan.n === 50 ? { target: '< 5' } : {}) }
      }
      metrics[`idle_cpu_pct_per_host_${plan.n}`] = { value: round1(r.idleCpuPctPerHost), unit: '%' }
    }

    const idle = await idleRuns(quick, log)
    details.agentIdle = idle.unit
    details.agentIdleBare = idle.bare
    details.unitEnvironment = idle.unitEnv
    Object.assign(metrics, idleMetrics(idle))

    const rss = await meshNodeRss(log)
    details.meshNodeProcess = rss
    metrics.mesh_node_rss_mb = { value: round1(rss.rssMb), unit: 'MB' }
    metrics.mesh_node_idle_cpu_pct = { value: round1(rss.idleCpuPct), unit: '%' }

    const p = await separateProcesses(quick ? PROCESS_PLAN.quick : PROCESS_PLAN.full, log)
    ;(details.processes as Record<string, unknown>)[String(p.n)] = p
    Object.assign(metrics, processMetrics(p))
    return { metrics, details }
  }
}

async function inProcess (plan: Plan, log: (line: string) => void): Promise<{
  n: number, heartbeatMs: number, startMs: number, fullViewMs: number, avgPeers: number, convergenceP50Ms: number, convergenceP99Ms: number,
  convergenceMaxMs: number, deliveryP50Ms: number, deliveryP99Ms: number, missedRounds: number, rounds: number,
  idleCpuPctPerHost: number, processRssMb: number, rssMbPerHost: number, detections: unknown[], detectionP50S?: number,
  counters: unknown
}> {
  const timing = inProcessTiming(plan.n)
  const cluster = new InProcessCluster(timing)
  try {
    log(`in-process N=${plan.n}: starting (heartbeat every ${heartbeatIntervalMs(LAN_TIMING.heartbeatIntervalMs, plan.n, timing.maxAdvertsPerSecond ?? 1)} ms)`)
    const startMs = await cluster.start(plan.n, JOIN_STAGGER_MS)
    const fullViewMs = await cluster.converge(FULL_VIEW_TIMEOUT_MS)
    log(`  started in ${startMs} ms, full views after ${fullViewMs} ms more`)
    await sleep(SETTLE_MS)
    const idle = await cluster.measureIdle(IDLE_WINDOW_MS)
    const conv = await cluster.measureConvergence(plan.rounds, 1, (r, ms) => { if ((r + 1) % 20 === 0) log(`  round ${r + 1}/${plan.rounds}: ${ms.toFixed(0)} ms`) })
    log(`  convergence p50 ${median(conv.convergence).toFixed(1)} ms, p99 ${percentile(conv.convergence, 99).toFixed(1)} ms (${plan.rounds} rounds, ${conv.missed} missed)`)
    const detections = []
    for (let k = 0; k < plan.kills; k++) {
      const d = await cluster.measureFailureDetection(DETECTION_TIMEOUT_MS)
      detections.push(d ?? { missed: true })
      log(`  stopped host declared dead everywhere after ${d === undefined ? 'TIMEOUT' : (d.deadAllMs / 1000).toFixed(2) + ' s'}`)
      await sleep(1000)
    }
    const dead = detections.flatMap((d) => 'deadAllMs' in d ? [d.deadAllMs / 1000] : [])
    return {
      n: plan.n,
      heartbeatMs: heartbeatIntervalMs(LAN_TIMING.heartbeatIntervalMs, plan.n, timing.maxAdvertsPerSecond ?? 1),
      startMs,
      fullViewMs,
      avgPeers: cluster.stats().avgPeers,
      convergenceP50Ms: median(conv.convergence),
      convergenceP99Ms: percentile(conv.convergence, 99),
      convergenceMaxMs: Math.max(...conv.convergence),
      deliveryP50Ms: median(conv.deliveries),
      deliveryP99Ms: percentile(conv.deliveries, 99),
      missedRounds: conv.missed,
      rounds: plan.rounds,
      idleCpuPctPerHost: (idle.cpuCores * 100) / plan.n,
      processRssMb: idle.rssBytes / MB,
      rssMbPerHost: idle.rssBytes / MB / plan.n,
      detections,
      ...(dead.length > 0 ? { detectionP50S: median(dead) } : {}),
      counters: cluster.stats()
    }
  } finally {
    await cluster.stop()
  }
}

/** One bare mesh host process (no agent around it) joined to 10 in-process peers, idle: its RSS and CPU. */
async function meshNodeRss (log: (line: string) => void): Promise<{ rssMb: number, heapUsedMb: number, idleCpuPct: number, alive: number, peers: number }> {
  const cluster = new InProcessCluster('lan')
  let agent: AgentProcess | undefined
  try {
    await cluster.start(RSS_PEERS)
    await cluster.converge(30_000)
    const door = cluster.nodes[0]?.multiaddrs()[0] ?? ''
    const keyHex = Buffer.from(cluster.clusterKey).toString('hex')
    agent = new AgentProcess({ clusterKeyHex: keyHex, bootstrap: [door], timing: 'lan' })
    await agent.ready()
    // Measured only once it has joined: an agent alone is not the figure asked for.
    const joinDeadline = Date.now() + JOIN_TIMEOUT_MS
    while ((await agent.stats()).alive < RSS_PEERS + 1) {
      if (Date.now() > joinDeadline) throw new Error(`the agent process did not see its ${RSS_PEERS} peers within ${JOIN_TIMEOUT_MS} ms`)
      await sleep(250)
    }
    await sleep(SETTLE_MS)
    const s0 = await agent.stats()
    await sleep(2 * IDLE_WINDOW_MS)
    const s1 = await agent.stats()
    const cpuUs = (s1.cpuUserUs + s1.cpuSystemUs) - (s0.cpuUserUs + s0.cpuSystemUs)
    const r = { rssMb: s1.rssBytes / MB, heapUsedMb: s1.heapUsedBytes / MB, idleCpuPct: (cpuUs / ((s1.uptimeMs - s0.uptimeMs) * 1000)) * 100, alive: s1.alive, peers: s1.peers }
    log(`agent process with ${RSS_PEERS} peers: RSS ${r.rssMb.toFixed(1)} MB, heap ${r.heapUsedMb.toFixed(1)} MB, idle CPU ${r.idleCpuPct.toFixed(2)} %, sees ${r.alive} alive`)
    return r
  } finally {
    await agent?.stop()
    await cluster.stop()
  }
}

interface ProcessRun {
  n: number, convergenceP50Ms: number, convergenceP99Ms: number, missedRounds: number, detections: unknown[], detectionP50S?: number,
  rssMbAvg: number, rssMbMax: number, allAlive: boolean, heartbeatMs: number, idle: Traffic, churn: Traffic
}

/** The machine could not run them all: how far it got. */
interface ProcessStartFailure { n: number, ready: number, coresBusy: number, error: string }

async function separateProcesses (plan: ProcessPlan, log: (line: string) => void): Promise<ProcessRun | ProcessStartFailure> {
  const maxAdvertsPerSecond = PROCESS_HEARTBEATS_PER_HOST_S
  const cluster = new ProcessCluster(Buffer.from(generateClusterKey()).toString('hex'), { ...LAN_TIMING, maxAdvertsPerSecond })
  const heartbeatMs = heartbeatIntervalMs(LAN_TIMING.heartbeatIntervalMs, plan.n, maxAdvertsPerSecond)
  try {
    log(`${plan.n} mesh host processes: starting (heartbeat every ${heartbeatMs} ms)`)
    try {
      await cluster.start(plan.n)
    } catch (err) {
      if (!(err instanceof ClusterStartError)) throw err
      log(`  ${err.message}`)
      return { n: plan.n, ready: err.ready, coresBusy: err.cores, error: err.message }
    }
    const allAlive = await cluster.waitAllAlive(plan.n, 180_000)
    await sleep(SETTLE_MS)
    const stats = await Promise.all(cluster.agents.map(async (a) => await a.stats()))
    const idle = await cluster.measureTraffic(plan.trafficMs)
    log(`  idle, per host: ${(idle.bytesPerHostS / 1024).toFixed(1)} KB/s read, ${idle.advertsPerHostS.toFixed(1)} adverts/s`)
    const conv = await cluster.measureConvergence(plan.rounds, 1)
    log(`  convergence p50 ${median(conv.convergence)} ms, p99 ${percentile(conv.convergence, 99)} ms (${conv.missed} missed)`)
    const detections = []
    for (let k = 0; k < plan.kills; k++) {
      const d = await cluster.measureKill(DETECTION_TIMEOUT_MS)
      detections.push(d ?? { missed: true })
      log(`  SIGKILLed agent declared dead everywhere after ${d === undefined ? 'TIMEOUT' : (d.deadAllMs / 1000).toFixed(2) + ' s'}`)
      await sleep(1000)
    }
    const dead = detections.flatMap((d) => 'deadAllMs' in d ? [d.deadAllMs / 1000] : [])
    const churn = await cluster.measureTraffic(plan.trafficMs, plan.restarts)
    log(`  ${plan.restarts} hosts restarted, per host: ${(churn.bytesPerHostS / 1024).toFixed(1)} KB/s read, ${churn.advertsPerHostS.toFixed(1)} adverts/s, ${churn.noticesPerHostS.toFixed(2)} notices/s`)
    const rss = stats.map((s) => s.rssBytes / MB)
    return {
      n: plan.n,
      allAlive,
      heartbeatMs,
      idle,
      churn,
      convergenceP50Ms: median(conv.convergence),
      convergenceP99Ms: percentile(conv.convergence, 99),
      missedRounds: conv.missed,
      detections,
      ...(dead.length > 0 ? { detectionP50S: median(dead) } : {}),
      rssMbAvg: rss.reduce((a, b) => a + b, 0) / rss.length,
      rssMbMax: Math.max(...rss)
    }
  } finally {
    await cluster.stop()
  }
}
