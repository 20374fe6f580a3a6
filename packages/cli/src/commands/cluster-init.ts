import { writeClusterKey } from '@meshvirt/agent'
import type { Command } from '../command.js'

export const clusterInit: Command = {
  path: ['cluster', 'init'],
  summary: 'write a new private cluster key (give the same file to every agent)',
  usage: 'meshvirt cluster init [--out FILE] [--force]',
  options: {
    out: { type: 'string', short: 'o', valueName: 'FILE', description: 'where to write the key (default ./cluster.key), mode 0600' },
    force: { type: 'boolean', description: 'overwrite an existing key file (agents with the old key can no longer join)' }
  },
  examples: [
    'meshvirt cluster init --out /etc/meshvirt/cluster.key',
    'scp /etc/meshvirt/cluster.key host2:/etc/meshvirt/   # then: meshvirt agent --cluster-key /etc/meshvirt/cluster.key'
  ],
  async run (ctx) {
    const out = (ctx.values.out as string | undefined) ?? 'cluster.key'
    await writeClusterKey(out, { force: ctx.values.force === true })
    ctx.out(`wrote a new cluster key to ${out} (mode 0600).\nEvery agent of the cluster needs this file: meshvirt agent --cluster-key ${out}`)
    return 0
  }
}
