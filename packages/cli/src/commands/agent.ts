import { loadAgentConfig, runAgent, type AgentConfigInput } from '@meshvirt/agent/run'
import type { Command } from '../command.js'
import { dataDirOption } from './data-dir-option.js'

export const agent: Command = {
  path: ['agent'],
  summary: 'run the host agent: join the mesh, gossip capacity, serve the control API',
  usage: 'meshvirt agent [--data-dir DIR] [--listen MULTIADDR]… [--bootstrap MULTIADDR]… [--label k=v]… [--cluster-key FILE] [--config FILE]',
  options: {
    ...dataDirOption,
    name: { type: 'string', short: 'n', valueName: 'NAME', description: 'host name shown in tables and usable with --host (default: the OS hostname)' },
    config: { type: 'string', short: 'c', valueName: 'FILE', description: 'JSON config file (env MESHVIRT_CONFIG); flags > env > file > defaults' },
    listen: { type: 'string', multiple: true, short: 'l', valueName: 'MULTIADDR', description: 'address to listen on (default /ip4/0.0.0.0/tcp/7946)' },
    bootstrap: { type: 'string', multiple: true, short: 'b', valueName: 'MULTIADDR', description: 'any running agent, /ip4/…/tcp/…/p2p/ID (env MESHVIRT_BOOTSTRAP)' },
    label: { type: 'string', multiple: true, valueName: 'K=V', description: 'host label, e.g. zone=a, rack=r1, site=par (failure domains)' },
    'cluster-key': { type: 'string', short: 'k', valueName: 'FILE', description: 'private cluster key from `meshvirt cluster init` (default DATA_DIR/cluster.key)' },
    cluster: { type: 'string', valueName: 'NAME', description: 'cluster name, part of the gossip topic (default "default")' },
    'heartbeat-ms': { type: 'string', valueName: 'MS', description: 'advert heartbeat interval (default 15000; spaced out further as the cluster grows)' },
    'reserve-vcpus': { type: 'string', valueName: 'N', description: 'vCPUs held back for the host itself (default 0)' },
    'reserve-memory': { type: 'string', valueName: 'SIZE', description: 'memory held back for the host itself, e.g. 2G (default 0)' },
    'reserve-disk': { type: 'string', valueName: 'SIZE', description: 'disk held back for the host itself, e.g. 20G (default 0)' },
    'cpu-ratio': { type: 'string', valueName: 'R', description: 'vCPU overcommit ratio (default 4.0)' },
    'memory-ratio': { type: 'string', valueName: 'R', description: 'memory overcommit ratio (default 1.0)' },
    'disk-ratio': { type: 'string', valueName: 'R', description: 'disk overcommit ratio (default 1.0)' },
    hypervisor: { type: 'string', valueName: 'DRIVER', description: 'qemu (default) or sim — simulated guests, for control-plane benchmarks only' },
    accel: { type: 'string', valueName: 'ACCEL', description: 'auto (default: a real boot probe decides), kvm or tcg' },
    'image-dir': { type: 'string', multiple: true, valueName: 'DIR', description: 'where VM kernels, initrds and base images may come from' },
    'probe-kernel': { type: 'string', valueName: 'FILE', description: 'tiny guest kernel for the KVM boot probe (scripts/build-guest makes one)' },
    'probe-initrd': { type: 'string', valueName: 'FILE', description: 'initrd of the probe guest' },
    'replica-bandwidth': { type: 'string', valueName: 'SIZE', description: 'bound on replication traffic to each replica holder, per second (default 32M)' },
    'image-copies': { type: 'string', valueName: 'N', description: 'keep each library image on at least N hosts, in distinct failure domains where possible (default 2)' },
    'image-cache': { type: 'string', valueName: 'SIZE', description: 'unused library images kept on this host beyond SIZE are evicted, oldest-used first (default 20G)' },
    'image-bandwidth': { type: 'string', valueName: 'SIZE', description: 'bound on this host\'s image fetches, per second (default unbounded)' },
    'api-listen': { type: 'string', valueName: 'ADDR', description: 'serve the HTTPS API on HOST:PORT (off by default; users need a token: meshvirt user add)' },
    'monitor-listen': { type: 'string', valueName: 'ADDR', description: '/metrics and dashboard address: HOST:PORT (default 127.0.0.1, a free port; token in DATA_DIR/monitor.token) or off' },
    'underlay-address': { type: 'string', valueName: 'IP', description: 'where other hosts send this host\'s overlay (VXLAN) traffic (default: the IPv4 address of --listen)' },
    network: { type: 'string', valueName: 'DRIVER', description: 'linux (default: bridges, VXLAN, dnsmasq, nftables; needs root) or sim (in memory, with --hypervisor sim)' },
    'log-level': { type: 'string', valueName: 'LEVEL', description: 'debug, info, warn or error (default info); logs are JSON lines on stderr' }
  },
  examples: [
    'meshvirt cluster init --out /etc/meshvirt/cluster.key',
    'meshvirt agent --data-dir /var/lib/meshvirt --cluster-key /etc/meshvirt/cluster.key --label zone=a',
    'meshvirt agent -d /srv/mv2 -l /ip4/0.0.0.0/tcp/7947 -k /etc/meshvirt/cluster.key \\\n      --label site=dc2 --bootstrap /ip4/10.0.0.1/tcp/7946/p2p/12D3KooW…'
  ],
  async run (ctx) {
    const v = ctx.values as Record<string, string | string[] | undefined>
    const flags: AgentConfigInput = {
      name: v.name as string | undefined,
      dataDir: v['data-dir'] as string | undefined,
      listen: v.listen as string[] | undefined,
      bootstrap: v.bootstrap as string[] | undefined,
      labels: v.label as string[] | undefined,
      clusterKeyFile: v['cluster-key'] as string | undefined,
      cluster: v.cluster as string | undefined,
      heartbeatMs: v['heartbeat-ms'] as string | undefined,
      hostReserved: { vcpus: v['reserve-vcpus'] as string | undefined, memory: v['reserve-memory'] as string | undefined, disk: v['reserve-disk'] as string | undefined },
      overcommit: { cpu: v['cpu-ratio'] as string | undefined, memory: v['memory-ratio'] as string | undefined, disk: v['disk-ratio'] as string | undefined },
      logLevel: v['log-level'] as string | undefined,
      hypervisor: v.hypervisor as string | undefined,
      accel: v.accel as string | undefined,
      imageDirs: v['image-dir'] as string[] | undefined,
      probeKernel: v['probe-kernel'] as string | undefined,
      probeInitrd: v['probe-initrd'] as string | undefined,
      monitorListen: v['monitor-listen'] as string | undefined,
      apiListen: v['api-listen'] as string | undefined,
      replicaBandwidth: v['replica-bandwidth'] as string | undefined,
      imageCopies: v['image-copies'] as string | undefined,
      imageCache: v['image-cache'] as string | undefined,
      imageBandwidth: v['image-bandwidth'] as string | undefined,
      underlayAddress: v['underlay-address'] as string | undefined,
      network: v.network as string | undefined
    }
    const config = await loadAgentConfig({ flags, env: ctx.env, configFile: v.config as string | undefined })
    const running = await runAgent(config)
    ctx.out(`meshvirt agent ready: host ${running.hostId} (incarnation ${running.incarnation})`)
    for (const a of running.addrs) ctx.out(`  listening on ${a}`)
    ctx.out(`  control socket ${running.controlSocket}`)
    if (running.monitoring.metricsUrl !== undefined) ctx.out(`  metrics ${running.monitoring.metricsUrl} · dashboard ${running.monitoring.dashboardUrl ?? ''} (token in ${running.controlSocket.replace(/control\.sock$/, 'monitor.token')})`)
    await new Promise<void>((resolve) => {
      const stop = (signal: string): void => {
        ctx.err(`meshvirt agent: ${signal} received, leaving the mesh`)
        running.stop().then(resolve, (err: unknown) => { ctx.err(`meshvirt agent: error while stopping: ${String(err)}`); resolve() })
      }
      process.once('SIGINT', () => { stop('SIGINT') })
      process.once('SIGTERM', () => { stop('SIGTERM') })
    })
    return 0
  }
}
