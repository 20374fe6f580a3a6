import { randomUUID } from 'node:crypto'
import { formatSize, groupView, type AgentClient, type GroupView } from '@meshvirt/agent'
import { UsageError, type Command, type CommandContext } from '../command.js'
import { renderTable } from '../table.js'
import { controlClient, dataDirOption, jsonOption } from './common.js'
import { vmCreateOptions } from './vm.js'
import { specFromFlags, wholeNumber, withFlag } from './vm-args.js'

const DEFAULT_WAIT_S = 300

function nameOf (ctx: CommandContext): string {
  const name = ctx.positionals[0]
  if (name === undefined) throw new UsageError('name the group: meshvirt group COMMAND NAME')
  return name
}

function countOf (ctx: CommandContext): number {
  if (ctx.values.count === undefined) throw new UsageError('say how many members: --count N')
  return wholeNumber(ctx.values.count as string, '--count')
}

/** Members that exist (not lost with a dead host, not being deleted). */
function standing (g: GroupView): GroupView['members'] {
  return g.members.filter((m) => m.state !== 'lost' && m.state !== 'deleting')
}

function summary (g: GroupView): string {
  const running = g.members.filter((m) => m.state === 'running').length
  return `${running} of ${g.count} running`
}

function printGroup (ctx: CommandContext, g: GroupView): void {
  const t = g.template
  const lines = [
    `name:      ${g.name}${g.deletedAtMs > 0 ? ' (deleted: its members are being removed)' : ''}`,
    `id:        ${g.id}`,
    `count:     ${g.count} (${summary(g)})`,
    `owner:     ${g.owner === '' ? 'none yet (being taken over)' : `${g.ownerHostname !== '' ? g.ownerHostname : g.owner.slice(-12)} (${g.owner})`}`,
    `members:   ${t.vcpus} vCPU, ${formatSize(t.memoryBytes)} memory${t.diskBytes > 0 ? `, ${formatSize(t.diskBytes)} disk` : ''}${t.image !== '' ? `, ${t.image}` : ''}${t.replicas > 0 ? `, ${t.replicas} replica(s)` : ''}${t.spreadBy !== '' ? `, spread by ${t.spreadBy}` : ''}`,
    `revision:  ${g.revision}`
  ]
  if (g.createdAtMs > 0) lines.push(`created:   ${new Date(g.createdAtMs).toISOString()}`)
  ctx.out(lines.join('\n'))
  if (g.members.length === 0) return
  ctx.out(renderTable(['MEMBER', 'STATE', 'HOST', 'ID'], g.members.map((m) => [m.name, m.state, m.host !== '' ? m.host : m.hostId.slice(-12), m.vmId])))
}

/** Waits until the group has exactly its count of members, all running (or, deleted, none); a line per change. */
async function waitForCount (ctx: CommandContext, client: AgentClient, name: string): Promise<GroupView | undefined> {
  const deadline = Date.now() + Number(ctx.values.timeout ?? DEFAULT_WAIT_S) * 1000
  let last = ''
  for (;;) {
    let g: GroupView
    try {
      g = groupView((await client.call({ inspectGroup: { name } })).group ?? {})
    } catch (err) {
      if ((err as { code?: string }).code === 'NOT_FOUND') return undefined
      throw err
    }
    const members = standing(g)
    const done = members.length === g.count && members.every((m) => m.state === 'running')
    const line = g.deletedAtMs > 0 ? `  ${members.length} member(s) left` : `  ${summary(g)}${members.length > g.count ? `, ${members.length - g.count} to delete` : ''}`
    if (line !== last && ctx.values.json !== true) ctx.err(line)
    last = line
    if (done && g.deletedAtMs === 0) return g
    if (Date.now() > deadline) throw Object.assign(new Error(`group ${name} is not at its count after the timeout (${summary(g)}); see meshvirt group show ${name}`), { code: 'TIMEOUT' })
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
}

/** After a create or a scale: waits for the count unless --no-wait, then prints the group. */
async function waitAndPrint (ctx: CommandContext, client: AgentClient, changed: GroupView): Promise<number> {
  const g = ctx.values['no-wait'] === true ? changed : await waitForCount(ctx, client, changed.name) ?? changed
  if (ctx.values.json === true) ctx.out(JSON.stringify(g, null, 2))
  else printGroup(ctx, g)
  return 0
}

const waitOptions = {
  'no-wait': { type: 'boolean' as const, description: 'return at once, without waiting for the members' },
  timeout: { type: 'string' as const, valueName: 'SECONDS', description: `how long to wait for the group to reach its count (default ${DEFAULT_WAIT_S})` }
}

const { name: _name, group: _group, 'no-wait': _noWait, timeout: _timeout, ...templateOptions } = vmCreateOptions

export const groupCreate: Command = {
  path: ['group', 'create'],
  summary: 'create a group of N VMs from one template, kept at its count by one host under a lease',
  usage: 'meshvirt group create NAME --count N [--vcpus N] [--memory SIZE] [--disk SIZE] (--image NAME|FILE | --kernel FILE …) [vm create flags]',
  options: {
    ...templateOptions,
    ...waitOptions,
    count: { type: 'string', valueName: 'N', description: 'how many members (NAME-1 … NAME-N), 1–100' }
  },
  examples: [
    'meshvirt group create web --count 4 --memory 1G --disk 10G --image debian-12 --net front --spread-by zone',
    'meshvirt group create api --count 2 --memory 128M --kernel .cache/guest/vmlinux --initrd .cache/guest/initramfs.cpio --cmdline "console=ttyS0"'
  ],
  async run (ctx) {
    const name = nameOf(ctx)
    const count = countOf(ctx)
    const { name: _n, group: _g, ...template } = specFromFlags(ctx)
    // Members spread over the hosts unless --policy says otherwise (the agent's default for groups).
    if (ctx.values.policy === undefined) template.policy = 0
    const client = controlClient(ctx)
    const key = (ctx.values['idempotency-key'] as string | undefined) ?? randomUUID()
    const g = groupView((await client.call({ idempotencyKey: key, createGroup: { name, count, template } }).catch((e: unknown) => { throw withFlag(e) })).group ?? {})
    if (ctx.values.json !== true) ctx.err(`group ${name} created: ${count} member(s), ${name}-1 … ${name}-${count}`)
    return await waitAndPrint(ctx, client, g)
  }
}

export const groupScale: Command = {
  path: ['group', 'scale'],
  summary: 'set a group\'s count: new members are created and spread, the newest go first',
  usage: 'meshvirt group scale NAME --count N [--no-wait] [--timeout SECONDS]',
  options: { ...dataDirOption, ...jsonOption, ...waitOptions, count: { type: 'string', valueName: 'N', description: 'the new count, 0–100' } },
  examples: ['meshvirt group scale api --count 3', 'meshvirt group scale api --count 1'],
  async run (ctx) {
    const name = nameOf(ctx)
    const client = controlClient(ctx)
    const g = groupView((await client.call({ scaleGroup: { name, count: countOf(ctx) } })).group ?? {})
    if (ctx.values.json !== true) ctx.err(`group ${name}: count ${g.count}`)
    return await waitAndPrint(ctx, client, g)
  }
}

export const groupLs: Command = {
  path: ['group', 'ls'],
  summary: 'list the cluster\'s VM groups',
  usage: 'meshvirt group ls [--data-dir DIR] [--json]',
  options: { ...dataDirOption, ...jsonOption },
  examples: ['meshvirt group ls'],
  async run (ctx) {
    const groups = ((await controlClient(ctx).call({ listGroups: {} })).groupList?.groups ?? []).map(groupView)
    if (ctx.values.json === true) {
      ctx.out(JSON.stringify(groups, null, 2))
      return 0
    }
    ctx.out(renderTable(['NAME', 'COUNT', 'RUNNING', 'HOSTS', 'OWNER'], groups.map((g) => [
      g.name + (g.deletedAtMs > 0 ? ' (deleting)' : ''), String(g.count), String(g.members.filter((m) => m.state === 'running').length),
      String(new Set(standing(g).map((m) => m.hostId)).size), g.owner === '' ? '-' : g.ownerHostname !== '' ? g.ownerHostname : g.owner.slice(-12)
    ])))
    return 0
  }
}

export const groupShow: Command = {
  path: ['group', 'show'],
  summary: 'show a group: its template, its owner and each member with its state and host',
  usage: 'meshvirt group show NAME [--data-dir DIR] [--json]',
  options: { ...dataDirOption, ...jsonOption },
  examples: ['meshvirt group show api'],
  async run (ctx) {
    const g = groupView((await controlClient(ctx).call({ inspectGroup: { name: nameOf(ctx) } })).group ?? {})
    if (ctx.values.json === true) ctx.out(JSON.stringify(g, null, 2))
    else printGroup(ctx, g)
    return 0
  }
}

export const groupDelete: Command = {
  path: ['group', 'delete'],
  summary: 'delete a group and every member',
  usage: 'meshvirt group delete NAME [--no-wait] [--timeout SECONDS]',
  options: { ...dataDirOption, ...waitOptions },
  examples: ['meshvirt group delete api'],
  async run (ctx) {
    const name = nameOf(ctx)
    const client = controlClient(ctx)
    await client.call({ idempotencyKey: randomUUID(), deleteGroup: { name } })
    if (ctx.values['no-wait'] !== true) await waitForCount(ctx, client, name)
    ctx.out(`group ${name} deleted${ctx.values['no-wait'] === true ? ' (its members are being removed)' : ' with its members'}`)
    return 0
  }
}
