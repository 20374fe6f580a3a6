import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach } from 'vitest'
import { QmpClient } from '../src/index.js'

export interface QmpCommand { execute: string, id?: string, arguments?: unknown }

/** A scripted QMP server: greeting, capabilities, then `reply` decides each answer. */
export async function fakeQmp (path: string, reply: (cmd: QmpCommand, socket: Socket) => void): Promise<Server> {
  const server = createServer((socket) => {
    socket.write(JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 } }, capabilities: [] } }) + '\n')
    let buf = ''
    socket.on('data', (chunk) => {
      buf += chunk.toString()
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const cmd = JSON.parse(buf.slice(0, nl)) as QmpCommand
        buf = buf.slice(nl + 1)
        if (cmd.execute === 'qmp_capabilities') socket.write(JSON.stringify({ return: {}, id: cmd.id }) + '\n')
        else reply(cmd, socket)
      }
    })
  })
  return await new Promise((resolve) => server.listen(path, () => { resolve(server) }))
}

/**
 * A scripted QMP server per test, in a temp dir, with a client connected to it; both closed and the
 * dir removed after each test. Call inside a `describe`; `send` writes one message to the client.
 */
export function scriptedQmp (prefix: string): { dir: () => string, connect: (reply: (cmd: QmpCommand, send: (msg: unknown) => void, socket: Socket) => void) => Promise<QmpClient> } {
  let dir = ''
  let server: Server | undefined
  let client: QmpClient | undefined
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), prefix)) })
  afterEach(async () => {
    client?.close()
    await new Promise((resolve) => server !== undefined ? server.close(resolve) : resolve(undefined))
    server = undefined
    client = undefined
    await rm(dir, { recursive: true, force: true })
  })
  return {
    dir: () => dir,
    connect: async (reply) => {
      const path = join(dir, 'qmp')
      server = await fakeQmp(path, (cmd, socket) => { reply(cmd, (msg) => { socket.write(JSON.stringify(msg) + '\n') }, socket) })
      client = await QmpClient.connect(path)
      return client
    }
  }
}
