import { agent } from './commands/agent.js'
import { runCli, type MainIo } from './run-cli.js'

/**
 * `meshvirt agent …` alone: the agent process loads its own command and not the other commands'
 * modules (API client, views, OpenAPI document), which it would carry on its heap for its whole life.
 */
export async function main (argv: string[], io: MainIo): Promise<number> {
  return await runCli(argv, io, [agent])
}
