import { chmod, mkdir, rm, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { ApiClient, readTokenClaims } from '@meshvirt/agent'
import type { Command } from '../command.js'
import { UsageError } from '../command.js'
import { profilePath } from './common.js'

export const login: Command = {
  path: ['login'],
  summary: 'remember an agent\'s API and a token: later commands run there (no --endpoint needed)',
  usage: 'meshvirt login https://HOST:PORT [--token TOKEN]   (or the token in MESHVIRT_TOKEN)',
  positionals: 'ENDPOINT',
  options: {
    token: { type: 'string', valueName: 'TOKEN', description: 'the user token (`meshvirt user add`); default MESHVIRT_TOKEN' }
  },
  examples: ['meshvirt login https://10.0.0.1:7443 --token mvt1.…   # the token `meshvirt user add` printed', 'meshvirt logout'],
  async run (ctx) {
    const endpoint = ctx.positionals[0]
    if (endpoint === undefined || ctx.positionals.length > 1) throw new UsageError('login takes one endpoint, https://HOST:PORT')
    const token = (ctx.values.token as string | undefined) ?? ctx.env.MESHVIRT_TOKEN
    if (token === undefined) throw new UsageError('give the token with --token or MESHVIRT_TOKEN')
    const claims = readTokenClaims(token)
    if (claims === undefined) throw new UsageError('not a meshvirt user token (mvt1.…)')
    // Checked before it is kept: the CA pin, the token, and that the agent answers.
    const client = new ApiClient(endpoint, token)
    try {
      await client.call({ listHosts: {} })
    } finally {
      client.close()
    }
    const file = profilePath(ctx.env)
    await mkdir(dirname(file), { recursive: true, mode: 0o700 })
    await writeFile(file, JSON.stringify({ endpoint, token }, null, 2) + '\n', { mode: 0o600 })
    await chmod(file, 0o600)
    ctx.out(`logged in to ${endpoint} as ${claims.user} (${claims.role}); kept in ${file}. Commands now run there unless --data-dir names a local agent.`)
    return 0
  }
}

export const logout: Command = {
  path: ['logout'],
  summary: 'forget the endpoint and token `meshvirt login` kept',
  usage: 'meshvirt logout',
  options: {},
  examples: ['meshvirt logout'],
  async run (ctx) {
    const file = profilePath(ctx.env)
    await rm(file, { force: true })
    ctx.out(`forgot ${file}: commands talk to the local agent again`)
    return 0
  }
}
