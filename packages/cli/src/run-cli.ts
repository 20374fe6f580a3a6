import { parseArgs } from 'node:util'
import { type Command, type CommandContext, UsageError } from './command.js'
import { commandHelp, groupHelp, topHelp } from './help.js'

export interface MainIo {
  env: Record<string, string | undefined>
  out: (text: string) => void
  err: (text: string) => void
}

/** Finds the longest command path matching the leading words of argv. */
function findCommand (argv: string[], commands: Command[]): [Command | undefined, string[]] {
  let best: Command | undefined
  for (const c of commands) {
    if (c.path.every((w, i) => argv[i] === w) && (best === undefined || c.path.length > best.path.length)) best = c
  }
  return [best, best === undefined ? argv : argv.slice(best.path.length)]
}

/** Runs `meshvirt ARGV…` over `commands`; returns the exit code (0 ok, 1 failure, 2 usage). Never throws. */
export async function runCli (argv: string[], io: MainIo, commands: Command[]): Promise<number> {
  // `meshvirt --endpoint URL vm ls`: a leading --endpoint applies to whatever command follows.
  const lead = /^--endpoint(?:=(.*))?$/.exec(argv[0] ?? '')
  if (lead !== null) {
    const url = lead[1] ?? argv[1]
    if (url === undefined) {
      io.err('meshvirt: --endpoint needs a URL, https://HOST:PORT')
      return 2
    }
    return await runCli(argv.slice(lead[1] === undefined ? 2 : 1), { ...io, env: { ...io.env, MESHVIRT_ENDPOINT: url } }, commands)
  }
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.out(topHelp(commands))
    return argv.length === 0 ? 2 : 0
  }
  const [cmd, rest] = findCommand(argv, commands)
  if (cmd === undefined) {
    const group = commands.filter((c) => c.path[0] === argv[0])
    if (group.length > 0 && ['--help', '-h', 'help', undefined].includes(argv[1])) {
      // `meshvirt vm --help` asks for help (exit 0); a bare `meshvirt vm` is a usage error with the same text.
      const help = groupHelp(argv[0] as string, commands)
      if (argv[1] === undefined) io.err(help)
      else io.out(help)
      return argv[1] === undefined ? 2 : 0
    }
    if (group.length > 0) {
      io.err(`meshvirt ${argv[0]}: ${argv[1] === undefined ? 'missing' : 'unknown'} subcommand${argv[1] === undefined ? '' : ` '${argv[1]}'`}; one of: ${group.map((c) => c.path.slice(1).join(' ')).join(', ')}`)
    } else {
      io.err(`meshvirt: unknown command '${argv[0]}' (see meshvirt --help)`)
    }
    return 2
  }
  let ctx: CommandContext
  try {
    const parsed = parseArgs({ args: rest, options: { ...cmd.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true })
    if (parsed.values.help === true) {
      io.out(commandHelp(cmd))
      return 0
    }
    ctx = { values: parsed.values, positionals: parsed.positionals, env: io.env, out: io.out, err: io.err }
  } catch (err) {
    io.err(`meshvirt ${cmd.path.join(' ')}: ${(err as Error).message}\nusage: ${cmd.usage}  (--help for more)`)
    return 2
  }
  try {
    return await cmd.run(ctx)
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`meshvirt ${cmd.path.join(' ')}: ${err.message}\nusage: ${cmd.usage}  (--help for more)`)
      return 2
    }
    const e = err as Error & { code?: string }
    io.err(`meshvirt ${cmd.path.join(' ')}: ${e.message}${e.code !== undefined && e.code !== '' ? ` [${e.code}]` : ''}`)
    if (io.env.MESHVIRT_DEBUG === '1') io.err(e.stack ?? '')
    return 1
  }
}
