/**
 * One mesh host as its own process, driven by the gossip benchmark over stdio (JSON lines).
 * stdin:  {"cmd":"update","marker":N} | {"cmd":"stats"} | {"cmd":"stop"}
 * stdout: {"type":"ready",…} | {"type":"seen",…} | {"type":"suspect"|"dead",…} | {"type":"stats",…}
 * Times are Date.now() (one machine, one clock), so the parent can compare them across processes.
 */
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { createMeshNode, emptyAdvertContent, generateIdentity, type HostCapacity, type MeshTiming, type TimingPreset } from '@meshvirt/mesh'

export interface AgentArgs {
  clusterKeyHex: string
  bootstrap: string[]
  timing: TimingPreset | Partial<MeshTiming>
}

export type AgentEvent =
  | { type: 'ready', hostId: string, addr: string }
  | { type: 'seen', from: string, marker: number, at: number }
  | { type: 'suspect' | 'dead', host: string, at: number }
  | {
    type: 'stats', rssBytes: number, heapUsedBytes: number, cpuUserUs: number, cpuSystemUs: number, uptimeMs: number, alive: number, peers: number,
    /** Bytes this process read (sockets almost all of it: /proc/self/io rchar) and the distinct adverts and notices it accepted. */
    readBytes: number, advertsAccepted: number, noticesAccepted: number
  }

/** The changed field the benchmark watches: allocated vCPUs carry the round's marker. */
export function markedCapacity (marker: number): HostCapacity {
  const c = emptyAdvertContent().capacity
  return { ...c, total: { vcpus: 64, memoryBytes: 256 * 2 ** 30, diskBytes: 2 ** 40 }, allocated: { vcpus: marker, memoryBytes: 0, diskBytes: 0 } }
}

export async function main (): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as AgentArgs
  const emit = (e: AgentEvent): void => { process.stdout.write(JSON.stringify(e) + '\n') }
  const identity = await generateIdentity()
  const node = await createMeshNode({
    privateKey: identity.privateKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: args.bootstrap,
    clusterKey: Buffer.from(args.clusterKeyHex, 'hex'),
    clusterName: 'bench',
    timing: args.timing,
    advert: { capacity: markedCapacity(0), labels: { zone: 'bench' } }
  })
  node.view.subscribe((e) => {
    if (e.type === 'updated' || e.type === 'joined') emit({ type: 'seen', from: e.host.hostId, marker: e.host.advert.capacity.allocated.vcpus, at: Date.now() })
    if (e.type === 'suspect' || e.type === 'dead') emit({ type: e.type, host: e.host.hostId, at: Date.now() })
  })
  emit({ type: 'ready', hostId: node.hostId, addr: node.multiaddrs()[0] ?? '' })
  for await (const line of createInterface({ input: process.stdin })) {
    const cmd = JSON.parse(line) as { cmd: string, marker?: number }
    if (cmd.cmd === 'update') node.updateAdvert({ capacity: markedCapacity(cmd.marker ?? 0) })
    if (cmd.cmd === 'stats') {
      const cpu = process.cpuUsage()
      emit({
        type: 'stats',
        rssBytes: process.memoryUsage().rss,
        heapUsedBytes: process.memoryUsage().heapUsed,
        cpuUserUs: cpu.user,
        cpuSystemUs: cpu.system,
        uptimeMs: Math.round(process.uptime() * 1000),
        alive: node.view.hosts().filter((h) => h.liveness === 'alive').length,
        peers: node.stats().peers,
        readBytes: Number(/rchar: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))?.[1] ?? 0),
        advertsAccepted: node.stats().adverts.accepted,
        noticesAccepted: node.stats().suspicions.accepted
      })
    }
    if (cmd.cmd === 'stop') break
  }
  await node.stop()
}
