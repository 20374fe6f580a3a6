import { loadExeca } from './lazy-execa.js'
import { HostNetworkError } from './types.js'

/**
 * How the Linux driver runs `ip`, `bridge`, `nft` and `dnsmasq`: one injectable function, so tests
 * can record or fake commands, and everything else is a thin layer over it.
 */

export interface CommandResult {
  exitCode: number
  stdout: string
  stderr: string
}

/** Runs `file` with `args` (and `input` on stdin); never throws for a non-zero exit. */
export type CommandRunner = (file: string, args: readonly string[], options?: { input?: string }) => Promise<CommandResult>

/** The real thing: execa, no shell, stdin closed unless there is input. */
export const execaRunner: CommandRunner = async (file, args, options) => {
  const result = await (await loadExeca())(file, args, {
    reject: false,
    ...(options?.input === undefined ? { stdin: 'ignore' as const } : { input: options.input })
  })
  const stdout = String(result.stdout ?? '')
  const stderr = String(result.stderr ?? '')
  return { exitCode: result.exitCode ?? -1, stdout, stderr: stderr !== '' || result.exitCode !== undefined ? stderr : (result.shortMessage ?? '') }
}

export function commandLine (file: string, args: readonly string[]): string {
  return [file.replace(/^.*\//, ''), ...args].join(' ')
}

/** Runs a command that must succeed: a failure is a HostNetworkError naming the command and what it said. */
export async function mustRun (run: CommandRunner, file: string, args: readonly string[], input?: string): Promise<string> {
  const result = await run(file, args, input === undefined ? undefined : { input })
  if (result.exitCode !== 0) {
    const command = commandLine(file, args)
    const stderr = result.stderr.trim()
    throw new HostNetworkError(`${command} failed: ${stderr !== '' ? stderr : `exit code ${result.exitCode}`}`, command, stderr)
  }
  return result.stdout
}
