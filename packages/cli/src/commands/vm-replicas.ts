import { randomUUID } from 'node:crypto'
import { hostRows, vmView } from '@meshvirt/agent'
import { spreadAdvice } from './spread-advice.js'
import { UsageError, type Command } from '../command.js'
import { controlClient, dataDirOption, jsonOption } from './common.js'
import { formatDuration, hostNames, parseRpo, vmRef, wholeNumber } from './vm-args.js'

export const vmReplicate: Command = {
  path: ['vm', 'replicate'],
  summary: 'keep K replicas of a VM\'s disk on other hosts (0 stops replicating)',
  usage: 'meshvirt vm replicate NAME|ID --replicas K [--rpo DURATION] [--spread-by LABEL]',
  options: {
    ...dataDirOption,
    ...jsonOption,
    replicas: { type: 'string', valueName: 'K', description: 'how many replicas to keep, each in its own failure domain (0: drop them all)' },
    rpo: { type: 'string', valueName: 'DURATION', description: 'how old a replica may get, e.g. 5s (default: unchanged, 5s at first)' },
    'spread-by': { type: 'string', valueName: 'LABEL', description: 'failure-domain label, e.g. site or rack (default: unchanged; distinct hosts at first)' }
  },
  examples: ['meshvirt vm replicate db-1 --replicas 2 --rpo 5s --spread-by site', 'meshvirt vm replicate db-1 --replicas 0'],
  async run (ctx) {
    const v = ctx.values
    if (v.replicas === undefined) throw new UsageError('say how many replicas to keep: --replicas K')
    const replicas = wholeNumber(v.replicas as string, '--replicas')
    const rpoMs = v.rpo === undefined ? 0 : parseRpo(v.rpo as string)
    const client = controlClient(ctx)
    const res = await client.call({ idempotencyKey: randomUUID(), replicateVm: { vm: vmRef(ctx), replicas, rpoMs, spreadBy: (v['spread-by'] as string | undefined) ?? '' } })
    const vm = vmView(res.vm ?? {})
    const r = vm.replication
    if (r !== undefined && r.replicas > 0) {
      const advice = spreadAdvice(hostRows((await client.call({ listHosts: {} })).hostList ?? { hosts: [], selfId: '' }), r.spreadBy, r.replicas)
      if (advice !== undefined) ctx.err(advice)
    }
    if (v.json === true) { ctx.out(JSON.stringify(vm, null, 2)); return 0 }
    ctx.out(r === undefined || r.replicas === 0
      ? `${vm.name}: replication stopped; its holders free their copies`
      : `${vm.name}: ${r.replicas} replica(s), RPO ${formatDuration(r.rpoMs)}${r.spreadBy !== '' ? `, spread by ${r.spreadBy}` : ''}; the owner places holders and ships a first full copy (see meshvirt vm show ${vm.name})`)
    return 0
  }
}

export const vmFailover: Command = {
  path: ['vm', 'failover'],
  summary: 'start a VM from a replica because its owner host is dead (refused while the owner lives)',
  usage: 'meshvirt vm failover NAME|ID [--to HOST]',
  options: {
    ...dataDirOption,
    ...jsonOption,
    to: { type: 'string', valueName: 'HOST', description: 'the replica holder to start it on (default: the one with the freshest point)' }
  },
  examples: ['meshvirt vm failover db-1', 'meshvirt vm failover db-1 --to host-3'],
  async run (ctx) {
    const client = controlClient(ctx)
    const json = ctx.values.json === true
    if (!json) ctx.err('asking the replica holders …')
    const res = await client.call({ idempotencyKey: randomUUID(), failoverVm: { vm: vmRef(ctx), toHost: (ctx.values.to as string | undefined) ?? '' } }, { timeoutMs: 240_000 })
    const vm = vmView(res.vm ?? {})
    if (json) { ctx.out(JSON.stringify(vm, null, 2)); return 0 }
    const names = await hostNames(client)
    ctx.out(`${vm.name} is ${vm.state} on ${names.get(vm.owner) ?? vm.owner.slice(-12)} with epoch ${vm.epoch}, from its replica`)
    return 0
  }
}
