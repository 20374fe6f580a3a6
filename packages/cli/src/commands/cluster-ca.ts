import { clusterCaOf } from '@meshvirt/agent'
import type { Command } from '../command.js'
import { dataDirOf, dataDirOption } from './common.js'

export const clusterCa: Command = {
  path: ['cluster', 'ca'],
  summary: 'print the cluster CA certificate (PEM) the agents\' API certificates chain to, and its pin',
  usage: 'meshvirt cluster ca [--cluster-key FILE] [--pin]',
  options: {
    ...dataDirOption,
    'cluster-key': { type: 'string', short: 'k', valueName: 'FILE', description: 'the cluster key file (default DATA_DIR/cluster.key)' },
    pin: { type: 'boolean', description: 'print only the pin (sha256:…), as tokens carry it' }
  },
  examples: [
    'meshvirt cluster ca -k /etc/meshvirt/cluster.key > /etc/meshvirt/ca.pem   # import in a browser: the console opens without a warning',
    'meshvirt cluster ca -k /etc/meshvirt/cluster.key --pin'
  ],
  async run (ctx) {
    const file = (ctx.values['cluster-key'] as string | undefined) ?? `${dataDirOf(ctx)}/cluster.key`
    const ca = await clusterCaOf(file)
    ctx.out(ctx.values.pin === true ? ca.pin : ca.pem.trimEnd())
    return 0
  }
}
