import { randomUUID } from 'node:crypto'
import { UsageError, type Command, type CommandContext } from '../command.js'
import { controlClient, dataDirOption, jsonOption } from './common.js'
import { parseDuration } from './vm-args.js'

const ROLES = ['viewer', 'operator', 'admin']

function nameOf (ctx: CommandContext, verb: string): string {
  const name = ctx.positionals[0]
  if (name === undefined || ctx.positionals.length > 1) throw new UsageError(`user ${verb} takes one user name`)
  return name
}

export const userAdd: Command = {
  path: ['user', 'add'],
  summary: 'issue an API token for a user (any agent checks it; no user database)',
  usage: 'meshvirt user add NAME --role viewer|operator|admin [--expires 30d] [--json]',
  positionals: 'NAME',
  options: {
    ...dataDirOption,
    ...jsonOption,
    role: { type: 'string', valueName: 'ROLE', description: 'viewer (reads), operator (also acts on VMs and groups) or admin (also hosts, networks, images, users)' },
    expires: { type: 'string', valueName: 'DURATION', description: 'how long the token is valid: 12h, 30d … (default 365d, at most 1095d)' }
  },
  examples: [
    'meshvirt user add alice --role operator --expires 30d',
    'meshvirt user add ci --role viewer --expires 12h --json   # for a script: the token in .token'
  ],
  async run (ctx) {
    const name = nameOf(ctx, 'add')
    const role = ctx.values.role as string | undefined
    if (role === undefined || !ROLES.includes(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`)
    const expiresInMs = ctx.values.expires === undefined ? 0 : parseDuration(ctx.values.expires as string, '--expires')
    const res = await controlClient(ctx).call({ idempotencyKey: randomUUID(), addUser: { name, role, expiresInMs } })
    const t = res.userToken
    if (t == null) throw new Error('the agent answered without a token')
    if (ctx.values.json === true) {
      ctx.out(JSON.stringify({ name: t.name, role: t.role, token: t.token, expiresAt: new Date(Number(t.expiresAtMs)).toISOString(), caPin: t.caPin }, null, 2))
      return 0
    }
    ctx.out([
      `token for ${t.name} (${t.role}), valid until ${new Date(Number(t.expiresAtMs)).toISOString()}:`,
      '',
      t.token,
      '',
      'Keep it secret. Use it from anywhere (the token pins the cluster CA):',
      `  meshvirt login https://AGENT:PORT --token ${(t.token ?? '').slice(0, 12)}…`,
      '  or: MESHVIRT_ENDPOINT=https://AGENT:PORT MESHVIRT_TOKEN=<token> meshvirt vm ls',
      `Revoke it with: meshvirt user revoke ${t.name}`
    ].join('\n'))
    return 0
  }
}

export const userRevoke: Command = {
  path: ['user', 'revoke'],
  summary: 'refuse every token issued so far to a user, at every agent (gossiped)',
  usage: 'meshvirt user revoke NAME',
  positionals: 'NAME',
  options: { ...dataDirOption },
  examples: ['meshvirt user revoke alice   # then: meshvirt user add alice … issues a new one'],
  async run (ctx) {
    const name = nameOf(ctx, 'revoke')
    const res = await controlClient(ctx).call({ idempotencyKey: randomUUID(), revokeUser: { name } })
    const n = res.revocations?.revocations?.length ?? 0
    ctx.out(`revoked every token of ${name} issued until now; every agent refuses them once the gossip reaches it (seconds). ${n} user(s) revoked in all.`)
    return 0
  }
}
