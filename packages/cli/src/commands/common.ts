import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { ApiClient, ControlClient, DEFAULT_DATA_DIR, type AgentClient } from '@meshvirt/agent'
import { UsageError, type CommandContext, type OptionSpec } from '../command.js'

export { dataDirOption } from './data-dir-option.js'

export const jsonOption: Record<string, OptionSpec> = {
  json: { type: 'boolean', description: 'print JSON for scripts instead of a table' }
}

export function dataDirOf (ctx: CommandContext): string {
  return (ctx.values['data-dir'] as string | undefined) ?? ctx.env.MESHVIRT_DATA_DIR ?? DEFAULT_DATA_DIR
}

/** Where `meshvirt login` keeps the endpoint and token (0600). */
export function profilePath (env: Record<string, string | undefined>): string {
  return join(env.MESHVIRT_CONFIG_DIR ?? join(env.XDG_CONFIG_HOME ?? join(env.HOME ?? homedir(), '.config'), 'meshvirt'), 'profile.json')
}

export interface Profile { endpoint: string, token: string }

export function readProfile (env: Record<string, string | undefined>): Profile | undefined {
  try {
    const p = JSON.parse(readFileSync(profilePath(env), 'utf8')) as Partial<Profile>
    return typeof p.endpoint === 'string' && typeof p.token === 'string' ? { endpoint: p.endpoint, token: p.token } : undefined
  } catch {
    return undefined
  }
}

/**
 * The agent a command talks to: an API (`--endpoint`, MESHVIRT_ENDPOINT, or the `meshvirt login`
 * profile unless a data dir is named) with a user token, else the local agent's control socket.
 */
export function controlClient (ctx: CommandContext): AgentClient {
  const explicitDataDir = ctx.values['data-dir'] !== undefined || ctx.env.MESHVIRT_DATA_DIR !== undefined
  const profile = readProfile(ctx.env)
  const endpoint = (ctx.values.endpoint as string | undefined) ?? ctx.env.MESHVIRT_ENDPOINT ?? (explicitDataDir ? undefined : profile?.endpoint)
  if (endpoint === undefined) return new ControlClient(join(dataDirOf(ctx), 'control.sock'))
  const token = ctx.env.MESHVIRT_TOKEN ?? profile?.token
  if (token === undefined) throw new UsageError(`--endpoint ${endpoint} needs a user token: set MESHVIRT_TOKEN, or run \`meshvirt login ${endpoint}\``)
  return new ApiClient(endpoint, token)
}
