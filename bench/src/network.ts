/**
 * network: what the virtual networks (issue 16) cost the guests.
 *  - overlay_throughput_ratio: iperf3 through the overlay (guest namespace → bridge → VXLAN → underlay
 *    → VXLAN → bridge → guest namespace, the built LinuxHostNetwork in each host namespace) ÷ the same
 *    between the two hosts over the underlay; medians of alternating runs (network-overlay.ts).
 *  - migration_blackout_ms_p50: real agents, one per network namespace (scripts/netns; shipped gossip
 *    timing), real QEMU guests (TCG) on one network. Guest A (host-1) pings guest B with busybox
 *    `ping -i 0.01` while B moves host-2 ↔ host-3. Per move: the longest gap between two consecutive
 *    replies, (seq_after − seq_before) × the interval the guest really kept. Beside it the migration's
 *    own pause (`vm show --json` lastMigration.pauseMs, STOP → RESUME) and QEMU's downtime.
 *  - fdb_convergence_ms_p99: per NIC that appears (a VM created) or moves (each of those migrations),
 *    the instant the last other host with ports on the network had the MAC → the owner's underlay
 *    address in its VXLAN device (`bridge monitor fdb` in every host namespace, confirmed by polling
 *    `bridge -j fdb show`), minus the command's return; also minus the owner's commit (its JSON log).
 * Every process started is stopped by pid; the namespaces are deleted.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { networkStateDir } from '@meshvirt/agent'
import { vxlanName } from '@meshvirt/network'
import { ensureGuest, type TestGuest } from '@meshvirt/testkit'
import { cli, killLeftovers, startAgent, stopAgent, until, type Agent } from './failover-cluster.js'
import { REPO, percentile, type Benchmark, type Metric } from './harness.js'
import { guestFiles, inGuest, waitForSerial } from '@meshvirt/testkit'
import { FdbMonitor, fdbDst, netnsDown, netnsUp, type NsHost } from './network-cluster.js'
import { measureOverlay } from './network-overlay.js'

const PREFIX = 'mvbnet'
const SUBNET = '10.206.0'
const HOSTS = 4
const NET = 'bench'
const NET_SUBNET = '10.70.0.0/24'
/** Intervals tried for the guest's ping, smallest first (busybox accepts fractions; the guest must keep up). */
const INTERVALS_S = [0.01, 0.02, 0.05]

interface VmJson { id: string, name: string, owner: string, nics: Array<{ network: string, ip: string, mac: string }> }
interface VmShow extends VmJson { lastMigration?: { fromHost: string, toHost: string, downtimeMs: number, pauseMs: number, totalMs: number, finishedAtMs: number, path: string } }

interface Convergence {
  event: 'create' | 'migrate'
  vm: string
  owner: string
  observers: string[]
  /** Last host's entry − the command's return (negative: every host had it before the command returned). */
  fromReturnMs?: number
  /** Last host's entry − the owner's commit (its `vm committed` / `vm migrated in` log line). */
  fromCommitMs?: number
  /** Last host's entry − the command's start. */
  fromStartMs?: number
  /** Per observer: ms from the command's return to its entry, and whether the monitor or only the poll saw it. */
  perHost: Record<string, { ms: number, by: 'monitor' | 'poll' }>
  /** The machine's 1-minute load average when the command returned (2 cores: other work shows here). */
  load1m?: number
  error?: string
}

interface Move {
  move: number
  from: string
  to: string
  /** Longest gap between consecutive replies, in ms (seq gap × effective interval). */
  blackoutMs?: number
  seqGap?: number
  /** Pings sent (guest's summary) and replies received. */
  transmitted?: number
  received?: number
  effectiveIntervalMs?: number
  pauseMs?: number
  downtimeMs?: number
  totalMs?: number
  path?: string
  migrateCommandMs?: number
  /** The machine's 1-minute load average when the migrate command returned. */
  load1m?: number
  error?: string
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const round = (v: number | undefined, digits = 1): number | undefined => v === undefined || Number.isNaN(v) ? undefined : Number(v.toFixed(digits))

function median (values: number[]): number { return percentile(values, 50) }

export const network: Benchmark = {
  name: 'network',
  description: 'virtual networks: overlay vs underlay iperf3, guest blackout while a peer migrates, forwarding-entry convergence',
  run: async ({ quick, log }) => {
    const t00 = Date.now()
    const loadBefore = loadavg()
    const moves = quick ? 3 : 10
    const creates = quick ? 3 : 8

    // 1. Throughput: namespaces of its own, nothing else running in them.
    const overlay = await measureOverlay({ runs: quick ? 3 : 5, seconds: quick ? 2 : 5, log })
    const loadAfterIperf = loadavg()
    const overlayGbps = median(overlay.overlayGbps)
    const underlayGbps = median(overlay.underlayGbps)

    // 2. + 3. The agent cluster, built once.
    const g: TestGuest = await ensureGuest()
    const root = mkdtempSync(join(tmpdir(), 'mv-bench-network-'))
    const agents: Agent[] = []
    const monitors: FdbMonitor[] = []
    let hosts: NsHost[] = []
    const convergence: Convergence[] = []
    const results: Move[] = []
    let accel = 'unknown'
    let interval = { requestedS: 0, effectiveMs: 0, tried: [] as Array<{ s: number, result: string }> }
    let vni = 0
    try {
      hosts = await netnsUp(PREFIX, HOSTS, SUBNET)
      for (const h of hosts) monitors.push(new FdbMonitor(h))
      const key = join(root, 'cluster.key')
      await cli(undefined, ['cluster', 'init', '--out', key])
      for (const h of hosts) {
        const args = ['-k', key, '--image-dir', g.dir, '--monitor-listen', 'off', ...(agents[0] !== undefined ? ['--bootstrap', agents[0].addr] : [])]
        agents.push(await startAgent(`host-${h.index}`, join(root, `host-${h.index}`), 7946, args, 60_000, { ns: h.ns, addr: h.addr }))
      }
      const a1 = agents[0] as Agent
      await until(async () => {
        const seen = JSON.parse(await cli(a1, ['host', 'ls', '--json'])) as Array<{ liveness: string, accelerator?: string }>
        accel = seen[0]?.accelerator ?? accel
        return seen.filter((s) => s.liveness === 'alive').length === HOSTS ? true : undefined
      }, { timeoutMs: 60_000, what: `${HOSTS} hosts alive` })
      log(`${HOSTS} agents in namespaces ${PREFIX}-h1…h${HOSTS} (pids ${agents.map((a) => a.pid).join(', ')}), accel ${accel}`)
      await cli(a1, ['net', 'create', NET, '--subnet', NET_SUBNET])
      vni = (JSON.parse(await cli(a1, ['net', 'show', NET, '--json'])) as { vni: number }).vni
      const dev = vxlanName(vni)
      const agentOf = (hostId: string): Agent => agents.find((a) => a.hostId === hostId) as Agent
      const hostOf = (agent: Agent): NsHost => hosts[agents.indexOf(agent)] as NsHost
      const show = async (name: string): Promise<VmShow> => JSON.parse(await cli(a1, ['vm', 'show', name, '--json'])) as VmShow
      /** Hosts with a port on the network right now, as the cluster says (the owners of its VMs). */
      const portHosts = new Set<string>()

      /** Waits until every observer's kernel forwards `mac` to the owner; one convergence sample. */
      const converge = async (sample: Convergence, mac: string, ownerAgent: Agent, tStart: number, tReturn: number, commitMsg: string): Promise<void> => {
        const ownerAddr = hostOf(ownerAgent).addr
        const seenAt: number[] = []
        for (const name of sample.observers) {
          const agent = agents.find((a) => a.name === name) as Agent
          const h = hostOf(agent)
          let lastDst: string | undefined
          const polled = await until(async () => (lastDst = await fdbDst(h.ns, dev, mac)) === ownerAddr ? Date.now() : undefined, { timeoutMs: 15_000, intervalMs: 10, what: `${name} to forward ${mac} to ${ownerAddr}` })
            .catch((err: unknown) => {
              const seen = (monitors[h.index - 1]?.events ?? []).filter((e) => e.mac === mac && e.at >= tStart - 1).map((e) => `${e.deleted ? 'deleted ' : ''}→${e.dst} at +${e.at - tReturn} ms`)
              throw new Error(`${(err as Error).message}; the poll last saw ${lastDst ?? 'no entry'}; monitor since the command: ${seen.join(', ') || 'nothing'}`)
            })
          const mon = monitors[h.index - 1]?.firstSeen(dev, mac, ownerAddr, tStart - 1)
          const at = mon ?? polled
          sample.perHost[name] = { ms: at - tReturn, by: mon !== undefined ? 'monitor' : 'poll' }
          seenAt.push(at)
        }
        if (seenAt.length === 0) return
        const last = Math.max(...seenAt)
        sample.fromReturnMs = last - tReturn
        sample.fromStartMs = last - tStart
        const commit = ownerAgent.logs().find((l) => l.msg === commitMsg && l.fields.vm === sample.vm && l.time >= tStart - 5)
        if (commit !== undefined) sample.fromCommitMs = last - commit.time
      }

      /** Creates a VM with one NIC on `host`; returns it with its convergence sample (and waits for its DHCP lease when asked). */
      const createVm = async (name: string, host: string, waitLease: boolean): Promise<VmJson> => {
        const observers = agents.filter((a) => portHosts.has(a.hostId) && a.name !== host).map((a) => a.name)
        const tStart = Date.now()
        const vm = JSON.parse(await cli(a1, ['vm', 'create', '--name', name, '--memory', '128M', '--host', host, '--net', NET,
          '--kernel', g.kernel, '--initrd', g.initrd, '--cmdline', g.cmdline, '--json'])) as VmJson
        const tReturn = Date.now()
        const owner = agentOf(vm.owner)
        portHosts.add(vm.owner)
        const sample: Convergence = { event: 'create', vm: vm.id, owner: host, observers, perHost: {}, load1m: round(loadavg()[0], 2) }
        convergence.push(sample)
        try {
          await converge(sample, vm.nics[0]?.mac as string, owner, tStart, tReturn, 'vm committed')
        } catch (err) { sample.error = (err as Error).message }
        if (waitLease) {
          const files = guestFiles(owner.dataDir, vm.id)
          const m = await waitForSerial(files.log, /MESHVIRT-NET eth0 ([0-9.]+)\//, 90_000)
          if (m[1] !== vm.nics[0]?.ip) throw new Error(`${name} got ${m[1] ?? '?'} by DHCP, not its claimed ${vm.nics[0]?.ip ?? '?'}`)
          await waitForSerial(files.log, /guest# /, 30_000)
        }
        return vm
      }

      const vmA = await createVm('net-a', 'host-1', true)
      const vmB = await createVm('net-b', 'host-2', true)
      await createVm('net-c', 'host-4', true) // a second observer of B's moves: host-4 keeps a port on the network
      const bIp = vmB.nics[0]?.ip as string
      const bMac = vmB.nics[0]?.mac as string
      const filesA = guestFiles(a1.dataDir, vmA.id)
      const shellA = async (command: string, timeoutMs?: number): Promise<string> => await inGuest(filesA, command, timeoutMs)
      log(`network ${NET} (vni ${vni}, ${dev}): net-a ${vmA.nics[0]?.ip ?? ''} on host-1, net-b ${bIp} on host-2, net-c on host-4`)

      // The smallest interval the guest's busybox ping accepts and keeps (TCG): 50 pings, timed by the guest's uptime.
      const pingRun = async (count: number, s: number): Promise<{ transmitted: number, received: number, gap: number, elapsedS: number, last: number, error: string }> => {
        const out = await shellA(`P=/run/p; rm -f $P.*; read t0 r </proc/uptime; ping -c ${count} -i ${s} -W 1 ${bIp} >$P.log 2>&1; read t1 r </proc/uptime; ` +
          'echo "UPT $t0 $t1"; grep -E \'transmitted|ping:\' $P.log; awk \'/seq=/{x=$0; sub(/.*seq=/, "", x); split(x, f, " "); s=f[1]+0; if (n>0 && s-p>g) g=s-p; p=s; n++} END {print "GAPSTAT", g+0, n+0, p+0}\' $P.log',
        count * s * 1000 + 60_000)
        const upt = /UPT ([0-9.]+) ([0-9.]+)/.exec(out)
        const sum = /(\d+) packets transmitted, (\d+) packets received/.exec(out)
        const gap = /GAPSTAT (\d+) (\d+) (-?\d+)/.exec(out)
        return {
          transmitted: Number(sum?.[1] ?? 0), received: Number(sum?.[2] ?? 0), gap: Number(gap?.[1] ?? 0), last: Number(gap?.[3] ?? -1),
          elapsedS: upt !== null ? Number(upt[2]) - Number(upt[1]) : Number.NaN, error: /ping: .*/.exec(out)?.[0] ?? ''
        }
      }
      for (const s of INTERVALS_S) {
        const r = await pingRun(50, s)
        const eff = r.elapsedS * 1000 / Math.max(1, r.transmitted)
        interval.tried.push({ s, result: r.error !== '' ? r.error : `${r.received}/${r.transmitted} replies in ${r.elapsedS.toFixed(2)} s (${eff.toFixed(1)} ms per ping)` })
        if (r.error === '' && r.transmitted === 50 && r.received >= 45) { interval = { ...interval, requestedS: s, effectiveMs: eff }; break }
      }
      if (interval.requestedS === 0) throw new Error(`the guest's ping accepts none of ${INTERVALS_S.join(', ')} s: ${JSON.stringify(interval.tried)}`)
      log(`guest ping -i ${interval.requestedS}: ${interval.effectiveMs.toFixed(1)} ms per ping measured (${JSON.stringify(interval.tried)})`)

      // B back and forth between host-2 and host-3; A pings it throughout each move.
      const PING_S = 10
      const count = Math.round(PING_S / interval.requestedS)
      for (let i = 1; i <= moves; i++) {
        const before = await show('net-b')
        const from = agentOf(before.owner)
        const to = from.name === 'host-2' ? 'host-3' : 'host-2'
        const move: Move = { move: i, from: from.name, to }
        results.push(move)
        try {
          const pinging = pingRun(count, interval.requestedS)
          await sleep(1500)
          const observers = agents.filter((a) => portHosts.has(a.hostId) && a.name !== to && a.name !== from.name).map((a) => a.name)
          const tStart = Date.now()
          await cli(a1, ['vm', 'migrate', 'net-b', '--to', to, '--json'], 180_000)
          const tReturn = Date.now()
          move.migrateCommandMs = tReturn - tStart
          move.load1m = round(loadavg()[0], 2)
          const toAgent = agents.find((a) => a.name === to) as Agent
          portHosts.delete(from.hostId)
          portHosts.add(toAgent.hostId)
          const sample: Convergence = { event: 'migrate', vm: vmB.id, owner: to, observers, perHost: {}, load1m: move.load1m }
          convergence.push(sample)
          try {
            await converge(sample, bMac, toAgent, tStart, tReturn, 'vm migrated in')
          } catch (err) { sample.error = (err as Error).message }
          const after = await show('net-b')
          const m = after.lastMigration
          if (m !== undefined) Object.assign(move, { pauseMs: m.pauseMs, downtimeMs: m.downtimeMs, totalMs: m.totalMs, path: m.path })
          const r = await pinging
          move.transmitted = r.transmitted
          move.received = r.received
          move.seqGap = r.gap
          move.effectiveIntervalMs = round(r.elapsedS * 1000 / Math.max(1, r.transmitted), 2)
          move.blackoutMs = round(r.gap * (move.effectiveIntervalMs ?? Number.NaN), 1)
          if (r.last !== count - 1) move.error = `the last reply was seq ${r.last} of ${count}: the gap may run past the end of the ping`
          log(`move ${i} ${from.name}→${to} (load ${move.load1m ?? '-'}): blackout ${move.blackoutMs ?? '-'} ms (gap ${r.gap} × ${move.effectiveIntervalMs ?? '-'} ms; ${r.received}/${r.transmitted} replies), ` +
            `pause ${m?.pauseMs ?? '-'} ms, downtime ${m?.downtimeMs ?? '-'} ms, total ${m?.totalMs ?? '-'} ms; fdb ${sample.fromReturnMs ?? '-'} ms after return (${sample.fromCommitMs ?? '-'} after commit)`)
        } catch (err) {
          move.error = (err as Error).message
          log(`move ${i} failed: ${move.error}`)
        }
      }

      // More NICs appearing: probe VMs created on host-3 or host-2 (whichever B is not on), then deleted.
      for (let i = 1; i <= creates; i++) {
        const host = i % 2 === 0 ? 'host-2' : 'host-3'
        const name = `probe-${i}`
        const vm = await createVm(name, host, false)
        const s = convergence.at(-1) as Convergence
        log(`create ${name} on ${host} (load ${s.load1m ?? '-'}): fdb ${s.fromReturnMs ?? '-'} ms after return (${s.fromCommitMs ?? '-'} after commit) on ${s.observers.join(', ')}`)
        await cli(a1, ['vm', 'delete', name], 120_000)
        // Its host keeps a port on the network only if net-b runs there (net-a and net-c never move).
        if ((await show('net-b')).owner !== vm.owner) portHosts.delete(vm.owner)
      }
      for (const name of ['net-a', 'net-b', 'net-c']) await cli(a1, ['vm', 'delete', name], 120_000).catch(() => '')
    } finally {
      for (const a of agents) await stopAgent(a)
      for (const a of agents) killLeftovers(a.dataDir)
      for (const a of agents) killDnsmasqsOf(a.dataDir)
      for (const m of monitors) await m.stop()
      if (hosts.length > 0) await netnsDown(PREFIX).catch((err: unknown) => { log(`netns down: ${(err as Error).message}`) })
      for (const a of agents) rmSync(join(networkStateDir(a.dataDir), '..'), { recursive: true, force: true })
      rmSync(root, { recursive: true, force: true })
    }

    const done = results.filter((m) => m.blackoutMs !== undefined)
    const blackouts = done.map((m) => m.blackoutMs as number)
    const pauses = results.filter((m) => m.pauseMs !== undefined && m.pauseMs > 0).map((m) => m.pauseMs as number)
    const conv = convergence.filter((c) => c.fromReturnMs !== undefined)
    const fromReturn = conv.map((c) => c.fromReturnMs as number)
    const fromCommit = conv.filter((c) => c.fromCommitMs !== undefined).map((c) => c.fromCommitMs as number)
    const pauseP50 = percentile(pauses, 50)
    const metrics: Record<string, Metric> = {
      overlay_throughput_ratio: { value: Number((overlayGbps / underlayGbps).toFixed(3)), unit: '', target: '≥ 0.8' },
      overlay_gbps: { value: overlayGbps, unit: 'Gbit/s' },
      underlay_gbps: { value: underlayGbps, unit: 'Gbit/s' },
      migration_blackout_ms_p50: { value: percentile(blackouts, 50), unit: 'ms', target: `≤ pause + 100 (${Number.isNaN(pauseP50) ? '?' : (pauseP50 + 100).toFixed(0)})` },
      migration_blackout_ms_max: { value: Math.max(...blackouts), unit: 'ms' },
      migration_pause_ms_p50: { value: pauseP50, unit: 'ms' },
      migration_downtime_ms_p50: { value: percentile(results.filter((m) => m.downtimeMs !== undefined).map((m) => m.downtimeMs as number), 50), unit: 'ms' },
      ping_interval_ms: { value: round(interval.effectiveMs, 2) as number, unit: 'ms' },
      fdb_convergence_ms_p50: { value: percentile(fromCommit, 50), unit: 'ms' },
      fdb_convergence_ms_p99: { value: percentile(fromCommit, 99), unit: 'ms', target: '< 500' },
      fdb_convergence_from_return_ms_p50: { value: percentile(fromReturn, 50), unit: 'ms' },
      fdb_convergence_from_return_ms_p99: { value: percentile(fromReturn, 99), unit: 'ms' },
      moves: { value: done.length, unit: 'moves', target: String(moves) },
      fdb_samples: { value: conv.length, unit: 'samples' }
    }
    return {
      accel,
      metrics,
      details: {
        overlay: {
          method: 'two host namespaces on a switch namespace (veth, MTU 1500), the built LinuxHostNetwork (@meshvirt/network dist) running in each (ensureNetwork: bridge, VXLAN (learning on, entries programmed), nftables, dnsmasq; setPeers as the agents program it from gossip), one guest namespace per host whose veth (the NIC\'s MAC, guest MTU) is plugged into the bridge; iperf3, one TCP stream, guest A → guest B (overlay) then host A → host B (underlay), alternately; medians',
          ...overlay,
          load_average: { before: loadBefore.map((v) => round(v, 2)), after: loadAfterIperf.map((v) => round(v, 2)) }
        },
        cluster: `${HOSTS} meshvirt agents, each alone in a network namespace (scripts/netns, ${SUBNET}.0/24, shipped gossip timing: MESHVIRT_TIMING unset), real QEMU guests (${accel}, 128 MiB, the test guest) on network ${NET} (${NET_SUBNET}, vni ${vni}); net-a on host-1, net-b moving host-2 ↔ host-3, net-c on host-4 (so host-1 and host-4 both forward to net-b)`,
        blackout: `guest A runs busybox \`ping -c N -i ${interval.requestedS} -W 1 B\` into a file in its tmpfs, reading /proc/uptime before and after; B is migrated (vm migrate --to) 1.5 s after the ping starts. Per move: seq gap = the largest difference between the icmp_seq of two consecutive replies (1 when nothing is lost); effective interval = (uptime after − uptime before) / packets transmitted (the guest's own clock: what it really kept, not the ${interval.requestedS * 1000} ms asked); blackout = seq gap × effective interval, i.e. the time between the sends of the last reply before and the first after the hole (so a move that loses nothing counts one interval)`,
        ping_interval: interval,
        pause: 'lastMigration.pauseMs of `vm show --json` after the move (the guest\'s pause, source STOP → destination RESUME); downtimeMs is QEMU\'s own figure on the source',
        fdb: 'for each NIC that appears (vm create of net-b, net-c and the probe VMs, deleted again) and each move of net-b: every other host with ports on the network (its VXLAN device exists) is watched with `bridge monitor fdb` in its namespace (running for the whole bench, each line stamped on arrival) and polled every ~10 ms after the command returns with `bridge -j fdb show dev <vxlan>` (the device\'s own entries, with a dst; the bridge\'s learned ones are skipped) until the MAC → the owner\'s underlay address; a host\'s instant = the monitor\'s first matching line since the command started (the poll\'s when the monitor has none); fdb_convergence_ms_* = the last host\'s instant − the owner\'s commit: its `vm committed` (create) / `vm migrated in` (move, the destination took the guest over) JSON log line (ms resolution); fdb_convergence_from_return_ms_* = the same − the CLI command\'s return, negative because both commands return after every host already forwards (create waits for QEMU to start, migrate for the hand-over to finish)',
        convergence,
        moves: results,
        load_average: { before: loadBefore.map((v) => round(v, 2)), after: loadavg().map((v) => round(v, 2)) },
        wall_s: round((Date.now() - t00) / 1000, 1),
        source: gitCommit()
      }
    }
  }
}

/** SIGKILL of the dnsmasqs an agent's network driver left (pid files under its state dir, checked against /proc). */
function killDnsmasqsOf (dataDir: string): void {
  const dir = networkStateDir(dataDir)
  let nets: string[] = []
  try { nets = readdirSync(dir) } catch { return }
  for (const n of nets) {
    try {
      const pid = Number.parseInt(readFileSync(join(dir, n, 'dnsmasq.pid'), 'utf8'), 10)
      if (Number.isInteger(pid) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) process.kill(pid, 'SIGKILL')
    } catch { /* gone */ }
  }
}

function gitCommit (): string {
  try { return execFileSync('git', ['-C', REPO, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim() } catch { return '' }
}
