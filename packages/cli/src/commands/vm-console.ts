import type { Command } from '../command.js'
import { controlClient, dataDirOption } from './common.js'
import { vmRef } from './vm-args.js'

const POLL_MS = 250
const CHUNK = 64 * 1024

export const vmConsole: Command = {
  path: ['vm', 'console'],
  summary: 'print a VM\'s serial console (from any host); --follow keeps printing',
  usage: 'meshvirt vm console NAME|ID [--follow] [--all | --tail BYTES]',
  options: {
    ...dataDirOption,
    follow: { type: 'boolean', short: 'f', description: 'keep printing new output until Ctrl-C' },
    all: { type: 'boolean', description: 'from the first boot, not just the end' },
    tail: { type: 'string', valueName: 'BYTES', description: 'how much of the end to print first (default 4096)' }
  },
  examples: ['meshvirt vm console web-1', 'meshvirt vm console web-1 --follow', 'meshvirt vm console web-1 --all | grep -i error'],
  async run (ctx) {
    const client = controlClient(ctx)
    const vm = vmRef(ctx)
    const read = async (offset: number, maxBytes: number): Promise<{ data: Uint8Array, next: number }> => {
      const res = await client.call({ readConsole: { vm, offset, maxBytes } })
      return { data: res.consoleChunk?.data ?? new Uint8Array(0), next: Number(res.consoleChunk?.nextOffset ?? 0) }
    }
    const size = (await read(0, 0)).next
    const tail = Number(ctx.values.tail ?? 4096)
    let offset = ctx.values.all === true ? 0 : Math.max(0, size - (Number.isFinite(tail) ? tail : 4096))
    let stopped = false
    process.once('SIGINT', () => { stopped = true })
    for (;;) {
      const { data, next } = await read(offset, CHUNK)
      if (data.length > 0) process.stdout.write(data)
      offset = next
      if (data.length === CHUNK) continue
      if (ctx.values.follow !== true || stopped) return 0
      await new Promise((resolve) => setTimeout(resolve, POLL_MS))
    }
  }
}
