import { COMMANDS } from './commands/index.js'
import { runCli, type MainIo } from './run-cli.js'

export type { MainIo } from './run-cli.js'

/** Runs `meshvirt ARGV…`; returns the exit code (0 ok, 1 failure, 2 usage). Never throws. */
export async function main (argv: string[], io: MainIo): Promise<number> {
  return await runCli(argv, io, COMMANDS)
}
