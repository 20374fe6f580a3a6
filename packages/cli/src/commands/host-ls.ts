import { formatSize, type HostRow, hostRows } from '@meshvirt/agent'
import type { Command, CommandContext } from '../command.js'
import { ago, renderTable } from '../table.js'
import { controlClient, dataDirOption, jsonOption } from './common.js'

async function listHosts (ctx: CommandContext): Promise<HostRow[]> {
  const res = await controlClient(ctx).call({ listHosts: {} })
  return hostRows(res.hostList ?? { hosts: [], selfId: '' })
}

export function printHosts (ctx: CommandContext, hosts: HostRow[]): void {
  if (ctx.values.json === true) {
    ctx.out(JSON.stringify(hosts, null, 2))
    return
  }
  const now = Date.now()
  const used = (a: number, t: number, fmt: (n: number) => string): string => `${fmt(a)}/${fmt(t)}`
  ctx.out(renderTable(
    ['HOST', 'NAME', 'STATE', 'VCPU', 'MEMORY', 'DISK', 'ACCEL', 'LABELS', 'VMS', 'LAST HEARD'],
    hosts.map((h) => [
      (h.self ? '*' : '') + h.hostId.slice(-12),
      h.hostname,
      h.liveness === 'alive' ? h.state : `${h.liveness}`,
      used(h.allocated.vcpus, h.allocatable.vcpus, String),
      used(h.allocated.memoryBytes, h.allocatable.memoryBytes, formatSize),
      used(h.allocated.diskBytes, h.allocatable.diskBytes, formatSize),
      h.accelerator,
      Object.entries(h.labels).map(([k, v]) => `${k}=${v}`).join(',') || '-',
      String(h.vms),
      ago(h.lastHeardMs, now)
    ])
  ))
}

export const hostLs: Command = {
  path: ['host', 'ls'],
  summary: 'list the hosts of the cluster as this agent sees them',
  usage: 'meshvirt host ls [--data-dir DIR] [--json]',
  options: { ...dataDirOption, ...jsonOption },
  examples: ['meshvirt host ls', 'meshvirt host ls --json | jq ".[] | select(.liveness != \\"alive\\")"'],
  async run (ctx) {
    printHosts(ctx, await listHosts(ctx))
    return 0
  }
}

export const clusterStatus: Command = {
  path: ['cluster', 'status'],
  summary: 'summary of the cluster: hosts by state, total and allocated capacity',
  usage: 'meshvirt cluster status [--data-dir DIR] [--json]',
  options: { ...dataDirOption, ...jsonOption },
  examples: ['meshvirt cluster status', 'meshvirt cluster status --json'],
  async run (ctx) {
    const hosts = await listHosts(ctx)
    const sum = (f: (h: HostRow) => number): number => hosts.filter((h) => h.liveness !== 'dead').reduce((a, h) => a + f(h), 0)
    const status = {
      hosts: hosts.length,
      alive: hosts.filter((h) => h.liveness === 'alive').length,
      suspect: hosts.filter((h) => h.liveness === 'suspect').length,
      dead: hosts.filter((h) => h.liveness === 'dead').length,
      vcpus: { allocated: sum((h) => h.allocated.vcpus), allocatable: sum((h) => h.allocatable.vcpus) },
      memoryBytes: { allocated: sum((h) => h.allocated.memoryBytes), allocatable: sum((h) => h.allocatable.memoryBytes) },
      diskBytes: { allocated: sum((h) => h.allocated.diskBytes), allocatable: sum((h) => h.allocatable.diskBytes) },
      vms: sum((h) => h.vms)
    }
    if (ctx.values.json === true) {
      ctx.out(JSON.stringify({ ...status, hostList: hosts }, null, 2))
      return 0
    }
    ctx.out([
      `hosts:  ${status.hosts} (${status.alive} alive, ${status.suspect} suspect, ${status.dead} dead)`,
      `vcpus:  ${status.vcpus.allocated}/${status.vcpus.allocatable} allocated`,
      `memory: ${formatSize(status.memoryBytes.allocated)}/${formatSize(status.memoryBytes.allocatable)} allocated`,
      `disk:   ${formatSize(status.diskBytes.allocated)}/${formatSize(status.diskBytes.allocatable)} allocated`,
      `vms:    ${status.vms}`,
      ''
    ].join('\n'))
    printHosts(ctx, hosts)
    return 0
  }
}
