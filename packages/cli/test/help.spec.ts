import { describe, expect, it } from 'vitest'
import { main } from '../src/main.js'
import { COMMANDS } from '../src/commands/index.js'

async function run (argv: string[]): Promise<{ code: number, out: string, err: string }> {
  let out = ''
  let err = ''
  const code = await main(argv, { env: {}, out: (t) => { out += t + '\n' }, err: (t) => { err += t + '\n' } })
  return { code, out, err }
}

const groups = [...new Set(COMMANDS.filter((c) => c.path.length > 1).map((c) => c.path[0] as string))]

describe('help as people type it', () => {
  it('has the groups people type', () => {
    expect(groups).toEqual(expect.arrayContaining(['vm', 'host', 'cluster']))
  })

  it.each(groups.flatMap((g) => [[g, '--help'], [g, '-h'], [g, 'help']]))('meshvirt %s %s prints the group help and exits 0', async (group, flag) => {
    const r = await run([group, flag])
    expect(r.code).toBe(0)
    expect(r.err).toBe('')
    for (const c of COMMANDS.filter((c) => c.path[0] === group)) expect(r.out).toContain(`${c.path.slice(1).join(' ')} `)
    expect(r.out).toMatch(/examples:\n {2}meshvirt /)
  })

  it.each(groups)('a bare meshvirt %s is a usage error that still lists the subcommands', async (group) => {
    const r = await run([group])
    expect(r.code).toBe(2)
    expect(r.err).toContain(`usage: meshvirt ${group} SUBCOMMAND`)
  })

  it.each(COMMANDS.map((c) => [c.path.join(' ')]))('meshvirt %s --help exits 0 with examples', async (path) => {
    const r = await run([...path.split(' '), '--help'])
    expect(r.code).toBe(0)
    expect(r.out).toMatch(/^usage: meshvirt /m)
    expect(r.out).toMatch(/examples:\n {2}\S/)
  })

  it.each([['--help'], ['-h'], ['help']])('meshvirt %s exits 0', async (flag) => {
    expect((await run([flag])).code).toBe(0)
  })

  it('an unknown subcommand is still a usage error naming the choices', async () => {
    const r = await run(['vm', 'frobnicate'])
    expect(r.code).toBe(2)
    expect(r.err).toMatch(/unknown subcommand 'frobnicate'; one of: create, ls/)
  })
})
