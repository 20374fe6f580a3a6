import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { meshvirt, type AgentProcess, pollUntil } from '@meshvirt/testkit'
import { NetnsCluster, netnsAvailable, netnsUnavailableReason, startAgentInNamespace } from '../support/netns.js'

interface HostJson { hostId: string, hostname: string, liveness: string }

const available = await netnsAvailable()
if (!available) console.warn(`netns-mesh: skipped — ${netnsUnavailableReason()}`)

/** Bound on every wait: generous against a loaded 2-core machine; the measured times are printed. */
const WAIT_MS = 20_000
const NAMES = ['h1', 'h2', 'h3'] as const

// Three agent processes, each alone in its network namespace, joined through h1. The cluster is
// built once (a join costs seconds); every test starts and ends with all three alive.
describe.skipIf(!available)('agents in separate network namespaces: cut links and partitions', () => {
  let dir: string
  let cluster: NetnsCluster | undefined
  const agents: AgentProcess[] = []
  const timings: Record<string, number | string> = {}

  async function seenBy (agent: AgentProcess): Promise<Map<string, string>> {
    const r = await meshvirt(['host', 'ls', '--json', '--data-dir', agent.dataDir])
    if (r.exitCode !== 0) throw new Error(r.stderr)
    return new Map((JSON.parse(r.stdout) as HostJson[]).map((h) => [h.hostname, h.liveness]))
  }

  /**
   * Polls the observers until each lists every host of `expected(observer)` with that liveness;
   * returns the ms since `since`. A poll round is one `meshvirt host ls` process per observer.
   */
  async function waitForViews (what: string, expected: (observer: string) => Record<string, string>, opts: { observers?: number[], since?: number } = {}): Promise<number> {
    const t0 = opts.since ?? Date.now()
    const observers = opts.observers ?? NAMES.map((_, i) => i)
    await pollUntil(async () => {
      const views = await Promise.all(observers.map(async (i) => await seenBy(agents[i] as AgentProcess)))
      return views.every((view, k) => Object.entries(expected(NAMES[observers[k] as number] as string)).every(([h, l]) => view.get(h) === l))
    }, { timeoutMs: WAIT_MS, intervalMs: 100, what })
    return Date.now() - t0
  }

  /**
   * When the cluster first reported `kind` about `subject` after `since` (ms after it), from the
   * event stream: the agents stamp the moment their view changed, so this is the detection time
   * without the cost of polling. One reporter per change, so every agent's stream is read.
   */
  async function firstEventAfter (kind: string, subject: string, since: number): Promise<number | string> {
    const id = agents[NAMES.indexOf(subject as typeof NAMES[number])]?.hostId
    let first = Infinity
    for (const agent of agents) {
      const r = await meshvirt(['events', '--json', '--data-dir', agent.dataDir])
      if (r.exitCode !== 0) continue
      for (const e of JSON.parse(r.stdout) as Array<{ kind: string, subjectHostId: string, time: string }>) {
        const t = Date.parse(e.time)
        if (e.kind === kind && e.subjectHostId === id && t >= since) first = Math.min(first, t - since)
      }
    }
    return Number.isFinite(first) ? first : 'no event'
  }

  const allAlive = (): Record<string, string> => Object.fromEntries(NAMES.map((n) => [n, 'alive']))

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mv-netns-'))
    cluster = await NetnsCluster.create({ size: 3, prefix: 'mvtmesh', subnet: '10.201.0' })
    const key = join(dir, 'cluster.key')
    expect((await meshvirt(['cluster', 'init', '--out', key])).exitCode).toBe(0)
    const common = ['-k', key, '--hypervisor', 'sim', '--monitor-listen', 'off']
    agents.push(await startAgentInNamespace(cluster, 1, ['--name', 'h1', ...common], { dataDir: join(dir, 'h1') }))
    const t0 = Date.now()
    for (const i of [2, 3]) {
      agents.push(await startAgentInNamespace(cluster, i, ['--name', `h${i}`, ...common, '--bootstrap', agents[0]?.addr as string], { dataDir: join(dir, `h${i}`) }))
    }
    timings['h2, h3 spawned → both ready'] = Date.now() - t0
    timings['h2, h3 spawned → all see 3 alive'] = await waitForViews('all three to see three alive hosts', allAlive, { since: t0 })
    // What the polling itself costs, to read the other figures against.
    const p0 = Date.now()
    await Promise.all(agents.map(async (a) => await seenBy(a)))
    timings['one poll round (3 × meshvirt host ls)'] = Date.now() - p0
  })

  afterAll(async () => {
    await Promise.all(agents.map(async (a) => { await a.stop() }))
    await cluster?.teardown()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
    console.log('netns-mesh measured (ms, polled every 100 ms through `meshvirt host ls`):\n' +
      Object.entries(timings).map(([k, v]) => `  ${k}: ${v}`).join('\n'))
  })

  it('joined: each agent listens on its namespace address and lists the other two alive', async () => {
    for (const [i, agent] of agents.entries()) {
      expect(agent.addr).toContain(`/ip4/${cluster?.host(i + 1).addr}/tcp/7946/p2p/${agent.hostId}`)
      expect(Object.fromEntries(await seenBy(agent))).toEqual(allAlive())
    }
  })

  it('a cut link: the other two see the host dead, and alive again once the link heals', { timeout: 90_000 }, async () => {
    const c = cluster as NetnsCluster
    const cutAt = Date.now()
    await c.cut(3)
    timings['cut h3 → h1, h2 see it dead'] = await waitForViews('h1 and h2 to see h3 dead (h3 cut)',
      () => ({ h1: 'alive', h2: 'alive', h3: 'dead' }), { observers: [0, 1], since: cutAt })
    // The cut host hears nobody either.
    timings['cut h3 → h3 sees h1, h2 dead'] = await waitForViews('h3 to see h1 and h2 dead',
      () => ({ h1: 'dead', h2: 'dead', h3: 'alive' }), { observers: [2], since: cutAt })
    const healAt = Date.now()
    await c.heal(3)
    timings['heal h3 → all see 3 alive'] = await waitForViews('all three alive after h3 heals', allAlive, { since: healAt })
    timings['cut h3 → first host-dead event about h3'] = await firstEventAfter('host-dead', 'h3', cutAt)
    timings['heal h3 → first host-alive event about h3'] = await firstEventAfter('host-alive', 'h3', healAt)
  })

  it('a partition {h1} | {h2, h3}: each side sees the other dead and its own side alive; healed, all alive', { timeout: 90_000 }, async () => {
    const c = cluster as NetnsCluster
    const splitAt = Date.now()
    await c.partition([1], [2, 3])
    timings['partition → both sides see the other dead'] = await waitForViews('each side of {h1} | {h2,h3} to see the other dead',
      (me) => me === 'h1' ? { h1: 'alive', h2: 'dead', h3: 'dead' } : { h1: 'dead', h2: 'alive', h3: 'alive' }, { since: splitAt })
    const healAt = Date.now()
    await c.healAll()
    timings['heal partition → all see 3 alive'] = await waitForViews('all three alive after the partition heals', allAlive, { since: healAt })
    timings['partition → first host-dead event about h1'] = await firstEventAfter('host-dead', 'h1', splitAt)
    timings['heal partition → first host-alive event about h1'] = await firstEventAfter('host-alive', 'h1', healAt)
  })
})
