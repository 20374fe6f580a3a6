/**
 * One host of the overlay-throughput measurement: the built LinuxHostNetwork (@meshvirt/network),
 * running inside the host's network namespace (the driver acts on the namespace it runs in), driven
 * by network-overlay.ts over IPC (harness forkHost with `netns`). Each request is one call of the
 * driver, as an agent makes it.
 */
import { LinuxHostNetwork, type NetworkConfig, type NetworkPeers } from '@meshvirt/network'

export interface NetworkHostInit { underlay: string, stateDir: string }

export type NetworkHostRequest =
  | { op: 'ensureNetwork', net: NetworkConfig }
  | { op: 'setPeers', network: string, peers: NetworkPeers }
  | { op: 'removeNetwork', name: string }
  | { op: 'shutdown' }

const init = JSON.parse(process.env.MV_BENCH_NET_HOST ?? '{}') as NetworkHostInit
const host = new LinuxHostNetwork({ underlay: init.underlay, stateDir: init.stateDir, superviseIntervalMs: 0 })

async function handle (req: NetworkHostRequest): Promise<unknown> {
  switch (req.op) {
    case 'ensureNetwork':
      await host.ensureNetwork(req.net)
      return {}
    case 'setPeers':
      await host.setPeers(req.network, req.peers)
      return {}
    case 'removeNetwork':
      await host.removeNetwork(req.name)
      return {}
    case 'shutdown':
      await host.close()
      setImmediate(() => process.exit(0))
      return {}
  }
}

process.on('message', (msg: { seq: number, req: NetworkHostRequest }) => {
  handle(msg.req).then(
    (result) => process.send?.({ seq: msg.seq, ok: true, result }),
    (err: unknown) => process.send?.({ seq: msg.seq, ok: false, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) })
  )
})
process.send?.({ seq: 0, ok: true, result: { hostId: init.underlay, addr: init.underlay } })
