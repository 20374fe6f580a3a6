import type { ParseArgsConfig } from 'node:util'

export type OptionSpec = NonNullable<ParseArgsConfig['options']>[string] & { description: string, valueName?: string }

/** One `meshvirt …` subcommand: its options, help and action. */
export interface Command {
  /** Words after `meshvirt`, e.g. ['host', 'ls']. */
  path: string[]
  summary: string
  usage: string
  options: Record<string, OptionSpec>
  /** Positional argument names for the help text. */
  positionals?: string
  examples: string[]
  run: (ctx: CommandContext) => Promise<number>
}

export interface CommandContext {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>
  positionals: string[]
  env: Record<string, string | undefined>
  /** Where relative paths given on the command line start (default: the process's current dir). */
  cwd?: string
  out: (text: string) => void
  err: (text: string) => void
}

/** Raised for bad command-line input: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
  readonly code = 'USAGE'
}
