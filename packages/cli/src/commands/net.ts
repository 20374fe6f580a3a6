import { randomUUID } from 'node:crypto'
import { networkView, type NetworkView } from '@meshvirt/agent'
import { UsageError, type Command, type CommandContext } from '../command.js'
import { renderTable } from '../table.js'
import { controlClient, dataDirOption, jsonOption } from './common.js'
import { wholeNumber } from './vm-args.js'

function nameOf (ctx: CommandContext): string {
  const name = ctx.positionals[0] ?? (ctx.values.name as string | undefined)
  if (name === undefined) throw new UsageError('name the network: meshvirt net COMMAND NAME')
  return name
}

function printNetwork (ctx: CommandContext, n: NetworkView): void {
  const lines = [
    `name:     ${n.name}`,
    `id:       ${n.id}`,
    `subnet:   ${n.subnet}`,
    `gateway:  ${n.gateway} (on every host with VMs on it${n.nat ? '; NAT to each host\'s uplink' : ''})`,
    `vxlan id: ${n.vni}`,
    `mtu:      ${n.mtu}`,
    `dhcp:     ${n.dhcp ? 'on' : 'off'}`
  ]
  if (n.createdAtMs > 0) lines.push(`created:  ${new Date(n.createdAtMs).toISOString()}`)
  ctx.out(lines.join('\n'))
  if (n.ports.length === 0) {
    ctx.out('ports:    none')
    return
  }
  ctx.out('ports:')
  ctx.out(renderTable(['VM', 'ADDRESS', 'MAC', 'HOST'], n.ports.map((p) => [p.vm, p.ip, p.mac, p.host !== '' ? p.host : p.hostId.slice(-12)])))
}

export const netCreate: Command = {
  path: ['net', 'create'],
  summary: 'create a virtual network that spans every host (VXLAN), accepted by any agent',
  usage: 'meshvirt net create NAME --subnet CIDR [--gateway IP] [--nat] [--mtu N] [--dhcp on|off]',
  options: {
    ...dataDirOption,
    ...jsonOption,
    subnet: { type: 'string', valueName: 'CIDR', description: 'the network\'s IPv4 subnet, e.g. 10.10.0.0/24 (must not overlap another network\'s)' },
    gateway: { type: 'string', valueName: 'IP', description: 'the gateway address every host serves (default: the subnet\'s first address)' },
    nat: { type: 'boolean', description: 'guests reach the outside: each host masquerades its own VMs to its uplink' },
    mtu: { type: 'string', valueName: 'N', description: 'the guests\' MTU (default: the underlay\'s MTU − 50, VXLAN\'s overhead)' },
    dhcp: { type: 'string', valueName: 'on|off', description: 'serve DHCP on every host for its own VMs (default on); DNS is served either way' }
  },
  examples: [
    'meshvirt net create front --subnet 10.10.0.0/24 --nat',
    'meshvirt net create back --subnet 10.20.0.0/24 --dhcp off --mtu 1400'
  ],
  async run (ctx) {
    const v = ctx.values
    const name = nameOf(ctx)
    if (v.subnet === undefined) throw new UsageError('a network needs --subnet CIDR, e.g. --subnet 10.10.0.0/24')
    const dhcp = (v.dhcp as string | undefined) ?? 'on'
    if (dhcp !== 'on' && dhcp !== 'off') throw new UsageError(`--dhcp must be on or off, got '${dhcp}'`)
    const req = {
      name,
      subnet: v.subnet as string,
      gateway: (v.gateway as string | undefined) ?? '',
      mtu: v.mtu === undefined ? 0 : wholeNumber(v.mtu as string, '--mtu'),
      nat: v.nat === true,
      noDhcp: dhcp === 'off'
    }
    const res = await controlClient(ctx).call({ idempotencyKey: randomUUID(), createNetwork: req })
    const n = networkView(res.network ?? {})
    if (v.json === true) ctx.out(JSON.stringify(n, null, 2))
    else ctx.out(`network ${n.name} created: ${n.subnet}, gateway ${n.gateway}, vxlan id ${n.vni}, mtu ${n.mtu}${n.nat ? ', nat' : ''}${n.dhcp ? '' : ', no dhcp'}`)
    return 0
  }
}

export const netLs: Command = {
  path: ['net', 'ls'],
  summary: 'list the cluster\'s networks',
  usage: 'meshvirt net ls [--data-dir DIR] [--json]',
  options: { ...dataDirOption, ...jsonOption },
  examples: ['meshvirt net ls', 'meshvirt net ls --json | jq -r ".[].subnet"'],
  async run (ctx) {
    const res = await controlClient(ctx).call({ listNetworks: {} })
    const nets = (res.networkList?.networks ?? []).map(networkView)
    if (ctx.values.json === true) {
      ctx.out(JSON.stringify(nets, null, 2))
      return 0
    }
    ctx.out(renderTable(['NAME', 'SUBNET', 'GATEWAY', 'VXLAN', 'MTU', 'NAT', 'DHCP', 'VMS', 'HOSTS'], nets.map((n) => [
      n.name, n.subnet, n.gateway, String(n.vni), String(n.mtu), n.nat ? 'yes' : 'no', n.dhcp ? 'on' : 'off', String(n.ports.length), String(new Set(n.ports.map((p) => p.hostId)).size)
    ])))
    return 0
  }
}

export const netShow: Command = {
  path: ['net', 'show'],
  summary: 'show a network: its definition, its VMs with their addresses, and the hosts they run on',
  usage: 'meshvirt net show NAME [--data-dir DIR] [--json]',
  options: { ...dataDirOption, ...jsonOption },
  examples: ['meshvirt net show front'],
  async run (ctx) {
    const res = await controlClient(ctx).call({ inspectNetwork: { name: nameOf(ctx) } })
    const n = networkView(res.network ?? {})
    if (ctx.values.json === true) ctx.out(JSON.stringify(n, null, 2))
    else printNetwork(ctx, n)
    return 0
  }
}

export const netDelete: Command = {
  path: ['net', 'delete'],
  summary: 'delete a network (refused while a VM has a NIC on it)',
  usage: 'meshvirt net delete NAME [--data-dir DIR]',
  options: { ...dataDirOption },
  examples: ['meshvirt net delete back'],
  async run (ctx) {
    const name = nameOf(ctx)
    await controlClient(ctx).call({ idempotencyKey: randomUUID(), deleteNetwork: { name } })
    ctx.out(`network ${name} deleted`)
    return 0
  }
}
