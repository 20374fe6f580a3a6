import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CommandContext } from '../src/command.js'
import { specFromFlags } from '../src/commands/vm-args.js'

const K1 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl a@b'
const K2 = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== c@d'
let dir = ''
const ctx = (values: CommandContext['values']): CommandContext => ({ values: { name: 'a', ...values }, positionals: [], env: {}, out: () => {}, err: () => {}, cwd: dir })

describe('vm create: --hostname, --ssh-key, --user-data', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'guest-args-'))
    await writeFile(join(dir, 'keys'), `# team keys\n${K1}\n\n${K2}\n`)
    await writeFile(join(dir, 'one.pub'), K1 + '\n')
    await writeFile(join(dir, 'init.yaml'), '#cloud-config\npackages: [htop]\n')
  })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('sends no guest config when none is asked for', () => {
    expect(specFromFlags(ctx({})).guest).toBeUndefined()
  })

  it('reads every key of every file (relative to the cwd) and the user-data as given', () => {
    expect(specFromFlags(ctx({ hostname: 'web1', 'ssh-key': ['keys', 'one.pub'], 'user-data': 'init.yaml' })).guest).toEqual({
      hostname: 'web1', sshAuthorizedKeys: [K1, K2, K1], userData: '#cloud-config\npackages: [htop]\n'
    })
  })

  it('says which file it cannot read', () => {
    expect(() => specFromFlags(ctx({ 'user-data': 'missing.yaml' }))).toThrow(/--user-data missing.yaml: cannot read .*missing.yaml \(ENOENT\)/)
  })
})
