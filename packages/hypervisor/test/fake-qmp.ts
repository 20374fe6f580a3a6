import { createServer, type Server, type Socket } from 'node:net'

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
