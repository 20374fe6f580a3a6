import { join } from 'node:path'
import { ControlClient, DEFAULT_DATA_DIR } from '@meshvirt/agent'
import type { CommandContext, OptionSpec } from '../command.js'

export const dataDirOption: Record<string, OptionSpec> = {
  'data-dir': { type: 'string', short: 'd', valueName: 'DIR', description: `the agent's data dir (env MESHVIRT_DATA_DIR; default ${DEFAULT_DATA_DIR})` }
}

export const jsonOption: Record<string, OptionSpec> = {
  json: { type: 'boolean', description: 'print JSON for scripts instead of a table' }
}

export function dataDirOf (ctx: CommandContext): string {
  return (ctx.values['data-dir'] as string | undefined) ?? ctx.env.MESHVIRT_DATA_DIR ?? DEFAULT_DATA_DIR
}

/** A client for the local agent named by --data-dir. */
export function controlClient (ctx: CommandContext): ControlClient {
  return new ControlClient(join(dataDirOf(ctx), 'control.sock'))
}
