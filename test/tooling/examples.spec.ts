import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { COMMANDS } from '../../packages/cli/src/commands/index.js'
import { allExamples, readmeExamples, segmentsOf } from '../support/examples.js'

const README = fileURLToPath(new URL('../../README.md', import.meta.url))
const examples = allExamples(README)

/** The command a `meshvirt …` segment names and the words after its path. */
function commandOf (words: string[]): [typeof COMMANDS[number] | undefined, string[]] {
  const argv = words.slice(1).filter((w) => w !== '…')
  let best: typeof COMMANDS[number] | undefined
  for (const c of COMMANDS) if (c.path.every((w, i) => argv[i] === w) && (best === undefined || c.path.length > best.path.length)) best = c
  return [best, best === undefined ? argv : argv.slice(best.path.length)]
}

describe('examples as written (help texts and README)', () => {
  it('finds the examples where they are written', () => {
    expect(examples.filter((e) => e.from.startsWith('README')).length).toBeGreaterThan(5)
    expect(examples.filter((e) => e.from.endsWith('--help')).length).toBeGreaterThan(20)
  })

  it.each(examples.flatMap((e) => e.segments.filter((s) => s[0] === 'meshvirt').map((s) => [e.from, s.join(' ')])))('%s: %s names a command and parses with its flags', (_from, text) => {
    const [cmd, rest] = commandOf(segmentsOf(text)[0] as string[])
    expect(cmd, `no meshvirt command for '${text}'`).toBeDefined()
    const c = cmd as typeof COMMANDS[number]
    expect(() => parseArgs({ args: rest, options: { ...c.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true })).not.toThrow()
  })

  it('reads shell blocks: continuation lines, comments, chains and pipes', () => {
    const md = ['```sh', 'meshvirt agent --data-dir /d \\', '    --label zone=a   # first', 'meshvirt vm stop a && meshvirt vm delete a', 'meshvirt vm ls --json | jq -r ".[].name"', 'echo not ours', '```', '```', 'meshvirt in a plain block', '```'].join('\n')
    expect(readmeExamples(md).map((e) => [e.line, e.segments])).toEqual([
      ['meshvirt agent --data-dir /d --label zone=a', [['meshvirt', 'agent', '--data-dir', '/d', '--label', 'zone=a']]],
      ['meshvirt vm stop a && meshvirt vm delete a', [['meshvirt', 'vm', 'stop', 'a'], ['meshvirt', 'vm', 'delete', 'a']]],
      ['meshvirt vm ls --json | jq -r ".[].name"', [['meshvirt', 'vm', 'ls', '--json'], ['jq', '-r', '.[].name']]]
    ])
  })
})
